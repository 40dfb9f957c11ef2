package dev.kiln.keypoints.data;

import static dev.kiln.keypoints.eval.Nme.LEFT_OUTER_EYE_CORNER;
import static dev.kiln.keypoints.eval.Nme.RIGHT_OUTER_EYE_CORNER;

import dev.kiln.keypoints.io.TextFiles;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Parser for the keypoint CSV files of the face dataset. The first line is a header, {@code
 * Names,0,1,...,135} (the coordinate columns may also be called {@code x0,y0,...,x67,y67}). Each
 * following line is an image file name and 136 numbers {@code x0,y0,...,x67,y67} in pixels of the
 * original image.
 *
 * <p>Problems with the whole file (missing, empty, missing or wrong header) raise an {@link
 * IOException}. Problems with single rows become {@link BadRow}s that name the line and the column
 * (1-based, the file name being column 1). Fields may be quoted with double quotes, blank lines are
 * ignored, and a UTF-8 byte order mark is accepted.
 *
 * <p>A row is bad if it has the wrong number of columns, a coordinate that is not a finite number,
 * the file name of an earlier row, or outer eye corners (points 36 and 45) closer than {@link
 * #MIN_EYE_CORNER_DISTANCE}, because the NME divides by their distance. Its file name must be a
 * relative path with {@code /} between folders and no {@code .} or {@code ..} segment, so that it
 * stays inside the image folder and each image has one spelling.
 */
public final class KeypointsCsv {

  /** Number of columns in every line: the file name and 136 coordinates. */
  public static final int COLUMNS = 1 + 2 * Sample.POINTS;

  /**
   * Smallest distance, in pixels of the original image, between the outer eye corners (points 36
   * and 45), which the NME divides by. Validation computes the NME after the evaluation rescale,
   * which can shrink an image by up to 10000 / round(1.15 S) for input side S, and after rounding
   * the keypoints to float, with an error of about 2.4e-7 S/2 pixels. One pixel stays about 1000
   * times above that error, while a tiny limit such as 1e-6 pixels could round to zero. The
   * smallest distance in the face dataset's training CSV is 11 pixels.
   */
  public static final double MIN_EYE_CORNER_DISTANCE = 1.0;

  private static final Pattern WINDOWS_DRIVE = Pattern.compile("[A-Za-z]:");

  private static final Pattern DECIMAL =
      Pattern.compile("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?");
  private static final Pattern NON_FINITE =
      Pattern.compile("[+-]?(nan|inf|infinity)", Pattern.CASE_INSENSITIVE);

  private KeypointsCsv() {}

  /**
   * One valid data row.
   *
   * @param lineNumber the 1-based line number in the CSV file
   * @param fileName the image file name, relative to the image folder
   * @param keypoints 136 finite coordinates x0, y0, ..., x67, y67 in pixels
   */
  public record Row(int lineNumber, String fileName, double[] keypoints) {}

  /**
   * The rows of one CSV file: the valid ones and the bad ones, each in file order.
   *
   * @param csv the parsed file
   * @param rows valid rows
   * @param badRows rows with a problem, with the reason
   */
  public record Contents(Path csv, List<Row> rows, List<BadRow> badRows) {

    public Contents {
      rows = List.copyOf(rows);
      badRows = List.copyOf(badRows);
    }
  }

  /**
   * Reads every row of {@code csv} and fails at the first bad one.
   *
   * @throws BadRowException naming the line and column of the first bad row
   * @throws IOException if the file is missing, empty or has a missing or wrong header
   */
  public static List<Row> read(Path csv) throws IOException {
    Contents contents = parse(csv, Integer.MAX_VALUE);
    if (!contents.badRows().isEmpty()) {
      throw new BadRowException(contents.badRows().getFirst(), "");
    }
    return contents.rows();
  }

  /**
   * Reads up to {@code limit} data rows of {@code csv}, good or bad, and collects the bad rows
   * instead of failing on them.
   *
   * @param limit maximum number of data rows to read, positive; {@link Integer#MAX_VALUE} for all
   * @throws IOException if the file is missing, empty or has a missing or wrong header
   */
  public static Contents parse(Path csv, int limit) throws IOException {
    if (limit <= 0) {
      throw new IllegalArgumentException("limit must be positive, got " + limit);
    }
    if (Files.isDirectory(csv)) {
      throw new FileSystemException(
          csv.toString(), null, "is a folder, but a keypoint CSV file was expected; pass the file");
    }
    if (Files.exists(csv) && !Files.isRegularFile(csv)) {
      // Reading a FIFO would wait for a writer, and a device may never end.
      throw new FileSystemException(
          csv.toString(),
          null,
          "is not a regular file (a FIFO, socket or device), but a keypoint CSV file was"
              + " expected; pass the file");
    }
    if (!Files.isRegularFile(csv)) {
      throw new NoSuchFileException(
          csv.toString(), null, "keypoint CSV file not found; check the dataset path");
    }

    List<Row> rows = new ArrayList<>();
    List<BadRow> badRows = new ArrayList<>();
    Map<String, Integer> firstLineOfName = new HashMap<>();

    try (BufferedReader reader = Files.newBufferedReader(csv, StandardCharsets.UTF_8)) {
      int lineNumber = 0;
      String[] header = null;
      String line;

      while ((line = reader.readLine()) != null) {
        lineNumber++;
        if (lineNumber == 1 && line.startsWith("\uFEFF")) {
          line = line.substring(1);
        }
        if (line.isBlank()) {
          continue;
        }

        if (header == null) {
          header = checkHeader(csv, lineNumber, splitFields(line));
          continue;
        }
        if (rows.size() + badRows.size() >= limit) {
          break;
        }

        List<String> fields = splitFields(line);
        String fileName = fields.getFirst();
        String problem = checkRow(fields, header);
        if (problem == null && firstLineOfName.containsKey(fileName)) {
          problem =
              "column 1: the file name is also on line "
                  + firstLineOfName.get(fileName)
                  + "; remove one of the two rows";
        }

        if (problem != null) {
          badRows.add(new BadRow(csv, lineNumber, fileName, problem));
          continue;
        }
        firstLineOfName.put(fileName, lineNumber);
        rows.add(new Row(lineNumber, fileName, parseCoordinates(fields)));
      }

      if (header == null) {
        throw new IOException(
            csv
                + ": the CSV file is empty; expected a header line \"Names,0,1,...,135\" and then"
                + " one row per image (file name and 136 coordinates)");
      }
    } catch (CharacterCodingException e) {
      throw TextFiles.notUtf8(csv, "a keypoint CSV file", e);
    }
    return new Contents(csv, rows, badRows);
  }

  private static String[] checkHeader(Path csv, int lineNumber, List<String> fields)
      throws IOException {
    String where = csv + " line " + lineNumber + " (header)";

    if (looksLikeImage(fields) || (fields.size() == COLUMNS && isAllNumbers(fields))) {
      throw new IOException(
          where
              + ": the first line is a data row, so the header is missing; add the line"
              + " \"Names,0,1,...,135\" at the top");
    }
    String separatorProblem = otherSeparator(fields);
    if (separatorProblem != null) {
      throw new IOException(where + ": " + separatorProblem);
    }
    if (fields.size() != COLUMNS) {
      throw new IOException(
          where
              + ": expected "
              + COLUMNS
              + " columns (a name column and 136 coordinate columns), found "
              + fields.size()
              + "; check that this is a 68-point keypoint CSV");
    }

    for (int i = 1; i < COLUMNS; i++) {
      int index = i - 1;
      String name = fields.get(i).toLowerCase(Locale.ROOT);
      String axisName = (index % 2 == 0 ? "x" : "y") + index / 2;
      if (!name.equals(Integer.toString(index)) && !name.equals(axisName)) {
        throw new IOException(
            where
                + ": column "
                + (i + 1)
                + " is named \""
                + fields.get(i)
                + "\", expected \""
                + index
                + "\" or \""
                + axisName
                + "\"; the coordinate columns must be in the order x0,y0,...,x67,y67");
      }
    }
    return fields.toArray(String[]::new);
  }

  /** Returns whether the coordinate columns all hold numbers other than their own indices. */
  private static boolean isAllNumbers(List<String> fields) {
    boolean indices = true;
    for (int i = 1; i < fields.size(); i++) {
      if (!DECIMAL.matcher(fields.get(i)).matches()) {
        return false;
      }
      indices &= fields.get(i).equals(Integer.toString(i - 1));
    }
    return !indices;
  }

  private static boolean looksLikeImage(List<String> fields) {
    String name = fields.getFirst().toLowerCase(Locale.ROOT);
    return name.endsWith(".jpg") || name.endsWith(".jpeg") || name.endsWith(".png");
  }

  /**
   * Returns the problem of a line whose values are separated by semicolons or tabs, as some
   * spreadsheets export CSV, or null for any other line. Such a spreadsheet may also write decimal
   * commas, so the separators are counted over all of the line's comma-separated fields.
   */
  private static String otherSeparator(List<String> fields) {
    for (char separator : new char[] {';', '\t'}) {
      long count = 0;
      for (String field : fields) {
        count += field.chars().filter(c -> c == separator).count();
      }
      if (count == COLUMNS - 1) {
        return "the values are separated by "
            + (separator == ';' ? "semicolons" : "tabs")
            + ", not commas; save the CSV with commas between values and points in numbers";
      }
    }
    return null;
  }

  /** Returns the first problem of a data row, or null if it is valid. */
  private static String checkRow(List<String> fields, String[] header) {
    String separatorProblem = otherSeparator(fields);
    if (separatorProblem != null) {
      return separatorProblem;
    }
    if (fields.size() != COLUMNS) {
      return "expected "
          + COLUMNS
          + " columns (file name and 136 coordinates), found "
          + fields.size()
          + "; fix or remove the row";
    }
    if (fields.getFirst().isEmpty()) {
      return "column 1: the image file name is empty; fill it in or remove the row";
    }
    String fileNameProblem = checkFileName(fields.getFirst());
    if (fileNameProblem != null) {
      return fileNameProblem;
    }

    for (int i = 1; i < COLUMNS; i++) {
      String value = fields.get(i);
      String column = "column " + (i + 1) + " (\"" + header[i] + "\", " + axisName(i - 1) + ")";
      if (value.isEmpty()) {
        return column + ": the value is empty; fill in the coordinate or remove the row";
      }
      if (NON_FINITE.matcher(value).matches()) {
        return column
            + ": \""
            + value
            + "\" is not a finite coordinate; fill in the coordinate or remove the row";
      }
      if (!DECIMAL.matcher(value).matches()) {
        return column + ": \"" + value + "\" is not a number; fix the value or remove the row";
      }
      if (!Double.isFinite(Double.parseDouble(value))) {
        return column + ": \"" + value + "\" overflows a double; fix the value or remove the row";
      }
    }
    return checkEyeCorners(parseCoordinates(fields));
  }

  /**
   * Returns the problem of an image file name that could leave the image folder or name one image
   * in two ways, or null if it is a plain relative path such as {@code a_01.jpg} or {@code
   * person/a_01.jpg}.
   */
  private static String checkFileName(String name) {
    String advice =
        "; give the image's path relative to the image folder, with / between folders (such as"
            + " Name_01.jpg or subfolder/Name_01.jpg), or remove the row";
    String column = "column 1: \"" + name + "\"";
    if (name.indexOf('\\') >= 0) {
      return column + " contains a backslash" + advice;
    }
    if (name.startsWith("/")) {
      return column + " is an absolute path" + advice;
    }
    if (WINDOWS_DRIVE.matcher(name).lookingAt()) {
      return column + " starts with a drive letter" + advice;
    }
    for (String segment : name.split("/", -1)) {
      if (segment.isEmpty()) {
        return column + " has an empty folder name (a / at the end or two in a row)" + advice;
      }
      if (segment.equals(".") || segment.equals("..")) {
        return column + " contains the path segment \"" + segment + "\"" + advice;
      }
    }
    try {
      Path.of(name);
    } catch (InvalidPathException e) {
      return column + " is not a valid file name (" + e.getReason() + ")" + advice;
    }
    return null;
  }

  /** Returns the problem of a row whose outer eye corners are too close for the NME, or null. */
  private static String checkEyeCorners(double[] keypoints) {
    int left = LEFT_OUTER_EYE_CORNER;
    int right = RIGHT_OUTER_EYE_CORNER;
    double distance =
        Math.hypot(
            keypoints[2 * left] - keypoints[2 * right],
            keypoints[2 * left + 1] - keypoints[2 * right + 1]);
    if (distance >= MIN_EYE_CORNER_DISTANCE) {
      return null;
    }
    return String.format(
        Locale.ROOT,
        "columns %d-%d and %d-%d (points %d and %d, the outer eye corners): (%s, %s) and (%s, %s)"
            + " are %.3g pixels apart, but the NME divides by this distance, which must be at least"
            + " %s pixel; fix the coordinates or remove the row",
        2 * left + 2,
        2 * left + 3,
        2 * right + 2,
        2 * right + 3,
        left,
        right,
        keypoints[2 * left],
        keypoints[2 * left + 1],
        keypoints[2 * right],
        keypoints[2 * right + 1],
        distance,
        MIN_EYE_CORNER_DISTANCE);
  }

  private static String axisName(int index) {
    return (index % 2 == 0 ? "x" : "y") + " of point " + index / 2;
  }

  private static double[] parseCoordinates(List<String> fields) {
    double[] keypoints = new double[COLUMNS - 1];
    for (int i = 1; i < COLUMNS; i++) {
      keypoints[i - 1] = Double.parseDouble(fields.get(i));
    }
    return keypoints;
  }

  /**
   * Splits a line at commas outside double quotes, removes the quotes, turns {@code ""} inside
   * quotes into {@code "} and trims spaces around each field.
   */
  static List<String> splitFields(String line) {
    List<String> fields = new ArrayList<>();
    StringBuilder field = new StringBuilder();
    boolean quoted = false;

    for (int i = 0; i < line.length(); i++) {
      char c = line.charAt(i);
      if (quoted) {
        if (c == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
          field.append('"');
          i++;
        } else if (c == '"') {
          quoted = false;
        } else {
          field.append(c);
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        fields.add(field.toString().strip());
        field.setLength(0);
      } else {
        field.append(c);
      }
    }

    fields.add(field.toString().strip());
    return fields;
  }
}
