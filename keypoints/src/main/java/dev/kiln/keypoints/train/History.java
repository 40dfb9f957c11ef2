package dev.kiln.keypoints.train;

import dev.kiln.keypoints.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The per-epoch records of a run, kept in {@code history.csv} in the run folder. */
public final class History {
  private final Path file;
  private final List<EpochRecord> records = new ArrayList<>();

  private History(Path file) {
    this.file = file;
  }

  /** Opens the history of a run folder, reading the rows already there. */
  public static History open(Path file) throws IOException {
    History history = new History(file);
    if (Files.exists(file)) {
      List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
      for (int i = 1; i < lines.size(); i++) {
        if (!lines.get(i).isBlank()) {
          try {
            history.records.add(EpochRecord.parse(lines.get(i)));
          } catch (IllegalArgumentException e) {
            throw new IOException(file + " line " + (i + 1) + ": " + e.getMessage(), e);
          }
        }
      }
    }
    return history;
  }

  public List<EpochRecord> records() {
    return List.copyOf(records);
  }

  /**
   * Adds a record, dropping any later epochs left by a run that was resumed from an earlier
   * checkpoint, and rewrites the file atomically.
   */
  public void add(EpochRecord record) throws IOException {
    records.removeIf(r -> r.epoch() >= record.epoch());
    records.add(record);
    StringBuilder text = new StringBuilder(EpochRecord.HEADER).append('\n');
    for (EpochRecord r : records) {
      text.append(r.toCsv()).append('\n');
    }
    AtomicFiles.writeString(file, text);
  }
}
