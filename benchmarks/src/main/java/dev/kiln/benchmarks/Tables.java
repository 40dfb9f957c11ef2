package dev.kiln.benchmarks;

import java.util.List;

/** Plain-text tables with aligned columns, for the reports of {@link JmhMain} and Compare. */
final class Tables {
  private Tables() {}

  /**
   * Formats rows of equal length, the first being the header. The first {@code textColumns} columns
   * are left-aligned and the rest, which hold numbers, right-aligned.
   */
  static String format(List<String[]> rows, int textColumns) {
    int columns = rows.get(0).length;
    int[] widths = new int[columns];
    for (String[] row : rows) {
      for (int i = 0; i < columns; i++) {
        widths[i] = Math.max(widths[i], row[i].length());
      }
    }
    StringBuilder text = new StringBuilder();
    for (String[] row : rows) {
      for (int i = 0; i < columns; i++) {
        String padding = " ".repeat(widths[i] - row[i].length());
        text.append(i < textColumns ? row[i] + padding : padding + row[i]);
        text.append(i + 1 < columns ? "  " : "\n");
      }
    }
    return text.toString();
  }
}
