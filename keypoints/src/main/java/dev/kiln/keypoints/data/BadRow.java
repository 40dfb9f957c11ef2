package dev.kiln.keypoints.data;

import java.nio.file.Path;

/**
 * A dataset row that could not be used, with the reason and the fix.
 *
 * @param csv the CSV file that contains the row
 * @param lineNumber the 1-based line number of the row in {@code csv}
 * @param fileName the image file name from the row's first column, or "" when it is missing
 * @param reason what is wrong with the row and what to do about it
 */
public record BadRow(Path csv, int lineNumber, String fileName, String reason) {

  /**
   * Maximum length of an image name that {@link #message} prints whole. A row whose separators are
   * not commas is one long first column, which would otherwise fill the message.
   */
  static final int MAX_SHOWN_NAME = 80;

  /** Returns a one-line description: the CSV file, the line, the image name and the reason. */
  public String message() {
    String shown =
        fileName.length() <= MAX_SHOWN_NAME
            ? fileName
            : fileName.substring(0, MAX_SHOWN_NAME - 3) + "...";
    String image = fileName.isEmpty() ? "" : " (" + shown + ")";
    return csv + " line " + lineNumber + image + ": " + reason;
  }

  @Override
  public String toString() {
    return message();
  }
}
