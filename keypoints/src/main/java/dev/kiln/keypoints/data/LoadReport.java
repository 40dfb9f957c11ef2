package dev.kiln.keypoints.data;

import java.nio.file.Path;
import java.util.List;

/**
 * The outcome of loading a dataset: how many rows became samples and which rows were skipped.
 *
 * @param csv the CSV file that was loaded
 * @param loaded number of samples loaded
 * @param skipped the skipped rows in CSV order, with reasons
 */
public record LoadReport(Path csv, int loaded, List<BadRow> skipped) {

  public LoadReport {
    skipped = List.copyOf(skipped);
  }

  /** Returns the number of skipped rows. */
  public int skippedCount() {
    return skipped.size();
  }

  /** Returns a text for the user: a summary line, then one line per skipped row. */
  public String summary() {
    StringBuilder text = new StringBuilder();
    text.append("Loaded ")
        .append(loaded)
        .append(" of ")
        .append(loaded + skipped.size())
        .append(" rows from ")
        .append(csv)
        .append(", skipped ")
        .append(skipped.size());
    if (skipped.isEmpty()) {
      return text.toString();
    }

    text.append(':');
    for (BadRow row : skipped) {
      text.append(System.lineSeparator()).append("  ").append(row.message());
    }
    return text.toString();
  }
}
