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

  /** Returns a one-line description: the CSV file, the line, the image name and the reason. */
  public String message() {
    String image = fileName.isEmpty() ? "" : " (" + fileName + ")";
    return csv + " line " + lineNumber + image + ": " + reason;
  }

  @Override
  public String toString() {
    return message();
  }
}
