package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parsing of keypoint CSV files, and the line and column named for each bad row. */
class KeypointsCsvTest {

  static final String HEADER =
      "Names,"
          + IntStream.range(0, 136).mapToObj(Integer::toString).collect(Collectors.joining(","));

  @TempDir Path dir;

  /** Returns a data line whose coordinate i is {@code base + i}. */
  static String row(String name, double base) {
    return name
        + ","
        + IntStream.range(0, 136)
            .mapToObj(i -> Double.toString(base + i))
            .collect(Collectors.joining(","));
  }

  /** Returns a data line with coordinate {@code index} replaced by {@code value}. */
  private static String rowWith(String name, int index, String value) {
    String[] fields = row(name, 1).split(",");
    fields[index + 1] = value;
    return String.join(",", fields);
  }

  private Path csv(String... lines) throws IOException {
    Path file = dir.resolve("points.csv");
    Files.write(file, List.of(lines));
    return file;
  }

  private BadRow onlyBadRow(Path file) throws IOException {
    KeypointsCsv.Contents contents = KeypointsCsv.parse(file, Integer.MAX_VALUE);
    assertEquals(1, contents.badRows().size(), "bad rows: " + contents.badRows());
    return contents.badRows().getFirst();
  }

  @Test
  void csvValidRowsParse() throws IOException {
    List<KeypointsCsv.Row> rows =
        KeypointsCsv.read(csv(HEADER, row("a_0.jpg", 1), row("b_1.jpg", 5)));

    assertEquals(2, rows.size());
    assertEquals(2, rows.get(0).lineNumber());
    assertEquals("a_0.jpg", rows.get(0).fileName());
    assertEquals(3, rows.get(1).lineNumber());
    assertArrayEquals(
        IntStream.range(0, 136).mapToDouble(i -> 5 + i).toArray(), rows.get(1).keypoints());
  }

  @Test
  void csvAxisHeaderNamesAccepted() throws IOException {
    String header =
        "image,"
            + IntStream.range(0, 136)
                .mapToObj(i -> (i % 2 == 0 ? "x" : "y") + i / 2)
                .collect(Collectors.joining(","));

    assertEquals(1, KeypointsCsv.read(csv(header, row("a_0.jpg", 1))).size());
  }

  @Test
  void csvQuotesBlankLinesAndCrlf() throws IOException {
    Path file = dir.resolve("crlf.csv");
    String quoted = row("\"a, \"\"quoted\"\"_0.jpg\"", 1);
    Files.writeString(file, "\uFEFF" + HEADER + "\r\n\r\n" + quoted + "\r\n");

    List<KeypointsCsv.Row> rows = KeypointsCsv.read(file);

    assertEquals(1, rows.size());
    assertEquals("a, \"quoted\"_0.jpg", rows.getFirst().fileName());
    assertEquals(3, rows.getFirst().lineNumber());
  }

  @Test
  void csvWrongColumnCountNamesLine() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, row("a_0.jpg", 1), "b_0.jpg,1,2,3"));

    assertEquals(3, bad.lineNumber());
    assertTrue(bad.reason().contains("expected 137 columns"), bad.reason());
    assertTrue(bad.reason().contains("found 4"), bad.reason());
    assertTrue(bad.message().contains("line 3"), bad.message());
  }

  @Test
  void csvNonNumberNamesColumn() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, rowWith("a_0.jpg", 7, "125px")));

    assertEquals(2, bad.lineNumber());
    assertTrue(bad.reason().contains("column 9"), bad.reason());
    assertTrue(bad.reason().contains("y of point 3"), bad.reason());
    assertTrue(bad.reason().contains("\"125px\" is not a number"), bad.reason());
  }

  @Test
  void csvNanValueRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, rowWith("a_0.jpg", 0, "nan")));

    assertTrue(bad.reason().contains("column 2"), bad.reason());
    assertTrue(bad.reason().contains("not a finite coordinate"), bad.reason());
  }

  @Test
  void csvInfinityRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, rowWith("a_0.jpg", 135, "-Infinity")));

    assertTrue(bad.reason().contains("column 137"), bad.reason());
    assertTrue(bad.reason().contains("not a finite coordinate"), bad.reason());
  }

  @Test
  void csvOverflowingNumberRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, rowWith("a_0.jpg", 4, "1e999")));

    assertTrue(bad.reason().contains("overflows"), bad.reason());
  }

  @Test
  void csvEmptyValueRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, rowWith("a_0.jpg", 10, "")));

    assertTrue(bad.reason().contains("column 12"), bad.reason());
    assertTrue(bad.reason().contains("empty"), bad.reason());
  }

  @Test
  void csvEmptyFileNameRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, row("", 1)));

    assertTrue(bad.reason().contains("column 1"), bad.reason());
    assertTrue(bad.reason().contains("file name is empty"), bad.reason());
  }

  @Test
  void csvDuplicateFileNameRejected() throws IOException {
    BadRow bad = onlyBadRow(csv(HEADER, row("a_0.jpg", 1), row("a_0.jpg", 2)));

    assertEquals(3, bad.lineNumber());
    assertTrue(bad.reason().contains("also on line 2"), bad.reason());
  }

  /** Returns a data line whose point 45 lies {@code dx} pixels right of point 36. */
  private static String rowWithEyeCornersApart(String name, double dx) {
    String[] fields = row(name, 1).split(",");
    fields[1 + 90] = Double.toString(Double.parseDouble(fields[1 + 72]) + dx);
    fields[1 + 91] = fields[1 + 73];
    return String.join(",", fields);
  }

  @Test
  void csvCoincidentEyeCornersRejected() throws IOException {
    Path file = csv(HEADER, row("a_0.jpg", 1), rowWithEyeCornersApart("b_0.jpg", 0));

    BadRow bad = onlyBadRow(file);
    BadRowException error = assertThrows(BadRowException.class, () -> KeypointsCsv.read(file));

    assertEquals(3, bad.lineNumber());
    assertTrue(bad.reason().contains("columns 74-75 and 92-93"), bad.reason());
    assertTrue(bad.reason().contains("points 36 and 45"), bad.reason());
    assertTrue(bad.reason().contains("(73.0, 74.0) and (73.0, 74.0)"), bad.reason());
    assertTrue(bad.reason().contains("0.00 pixels apart"), bad.reason());
    assertTrue(bad.reason().contains("remove the row"), bad.reason());
    assertEquals(3, error.badRow().lineNumber());
    assertTrue(error.getMessage().contains(file + " line 3 (b_0.jpg)"), error.getMessage());
  }

  @Test
  void csvEyeCornersOnePixelApart() throws IOException {
    Path file =
        csv(
            HEADER,
            rowWithEyeCornersApart("a_0.jpg", 1e-6),
            rowWithEyeCornersApart("b_0.jpg", 0.999),
            rowWithEyeCornersApart("c_0.jpg", KeypointsCsv.MIN_EYE_CORNER_DISTANCE));

    KeypointsCsv.Contents contents = KeypointsCsv.parse(file, Integer.MAX_VALUE);

    assertEquals(List.of(2, 3), contents.badRows().stream().map(BadRow::lineNumber).toList());
    assertTrue(
        contents.badRows().get(0).reason().contains("1.00e-06 pixels apart"),
        contents.badRows().get(0).reason());
    assertEquals(
        List.of("c_0.jpg"), contents.rows().stream().map(KeypointsCsv.Row::fileName).toList());
  }

  @Test
  void csvIrregularFileNamesRejected() throws IOException {
    Map<String, String> reasons = new LinkedHashMap<>();
    reasons.put("../a_0.jpg", "contains the path segment \"..\"");
    reasons.put("sub/../../a_0.jpg", "contains the path segment \"..\"");
    reasons.put("./a_0.jpg", "contains the path segment \".\"");
    reasons.put("/data/a_0.jpg", "is an absolute path");
    reasons.put("sub//a_0.jpg", "has an empty folder name");
    reasons.put("sub/", "has an empty folder name");
    reasons.put("..\\a_0.jpg", "contains a backslash");
    reasons.put("C:a_0.jpg", "starts with a drive letter");
    reasons.put("a\0_0.jpg", "is not a valid file name");

    for (Map.Entry<String, String> entry : reasons.entrySet()) {
      BadRow bad = onlyBadRow(csv(HEADER, row(entry.getKey(), 1)));

      assertEquals(2, bad.lineNumber(), entry.getKey());
      assertTrue(bad.reason().startsWith("column 1: \"" + entry.getKey() + "\""), bad.reason());
      assertTrue(bad.reason().contains(entry.getValue()), bad.reason());
      assertTrue(bad.reason().contains("relative to the image folder"), bad.reason());
    }
  }

  @Test
  void csvFileNameInSubfolderAccepted() throws IOException {
    List<KeypointsCsv.Row> rows = KeypointsCsv.read(csv(HEADER, row("person/a_0.jpg", 1)));

    assertEquals("person/a_0.jpg", rows.getFirst().fileName());
  }

  @Test
  void csvMissingHeaderRejected() throws IOException {
    Path file = csv(row("a_0.jpg", 1));

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.parse(file, 10));

    assertTrue(error.getMessage().contains("line 1"), error.getMessage());
    assertTrue(error.getMessage().contains("header is missing"), error.getMessage());
  }

  /** A name in Latin-1, as a spreadsheet in a European locale exports it. */
  @Test
  void csvNotUtf8NamesLineAndByte() throws IOException {
    Path file = dir.resolve("points.csv");
    String text =
        HEADER + "\n" + row("a_0.jpg", 1) + "\n" + row("Jos" + (char) 0xE9 + "_0.jpg", 2) + "\n";
    Files.write(file, text.getBytes(StandardCharsets.ISO_8859_1));

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.read(file));

    String message = error.getMessage();
    assertTrue(message.startsWith(file + ": line 3 is not valid UTF-8"), message);
    assertTrue(message.contains("byte 0xE9"), message);
    assertTrue(message.contains("save it again as UTF-8"), message);
  }

  @Test
  void csvWrongHeaderNameRejected() throws IOException {
    Path file = csv(HEADER.replace(",5,", ",five,"), row("a_0.jpg", 1));

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.read(file));

    assertTrue(error.getMessage().contains("column 7"), error.getMessage());
    assertTrue(error.getMessage().contains("\"five\""), error.getMessage());
  }

  /** A spreadsheet in a European locale exports semicolons between values and decimal commas. */
  @Test
  void semicolonRowsNamedAsSuch() throws IOException {
    String semicolons = row("a_0.jpg", 2).replace(',', ';');
    String decimalCommas = row("c_0.jpg", 2.5).replace(',', ';').replace(".5", ",5");

    List<BadRow> bad =
        KeypointsCsv.parse(
                csv(HEADER, row("b_0.jpg", 1), semicolons, decimalCommas), Integer.MAX_VALUE)
            .badRows();

    assertEquals(2, bad.size(), bad.toString());
    for (BadRow row : bad) {
      assertTrue(row.reason().startsWith("the values are separated by semicolons"), row.reason());
    }
    // The first row is one long column, which the message shortens.
    String message = bad.getFirst().message();
    assertTrue(message.contains(" line 3 (a_0.jpg;2.0;3.0;"), message);
    assertTrue(message.contains("...): the values"), message);
    assertTrue(message.length() < 300, message);
  }

  /** Opening a FIFO for reading would wait for a writer forever. */
  @Test
  void fifoRejectedWithoutReading() throws Exception {
    Path fifo = dir.resolve("points.csv");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
    assumeTrue(mkfifo.waitFor() == 0, "mkfifo is not available here");

    IOException error =
        assertTimeoutPreemptively(
            Duration.ofSeconds(10),
            () -> assertThrows(IOException.class, () -> KeypointsCsv.read(fifo)));

    assertTrue(error.getMessage().startsWith(fifo + ": is not a regular file"), error.getMessage());
  }

  @Test
  void tabHeaderNamesSeparator() throws IOException {
    Path file = csv(HEADER.replace(',', '\t'), row("a_0.jpg", 1));

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.read(file));

    assertTrue(error.getMessage().contains("separated by tabs"), error.getMessage());
  }

  @Test
  void csvShortHeaderRejected() throws IOException {
    Path file = csv("Names,0,1,2", row("a_0.jpg", 1));

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.read(file));

    assertTrue(error.getMessage().contains("found 4"), error.getMessage());
  }

  @Test
  void csvEmptyFileRejected() throws IOException {
    Path file = csv();

    IOException error = assertThrows(IOException.class, () -> KeypointsCsv.read(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("empty"), error.getMessage());
  }

  @Test
  void csvMissingFileRejected() {
    Path file = dir.resolve("absent.csv");

    assertThrows(NoSuchFileException.class, () -> KeypointsCsv.read(file));
  }

  @Test
  void csvStrictReadFailsAtFirstBad() throws IOException {
    Path file = csv(HEADER, row("a_0.jpg", 1), rowWith("b_0.jpg", 3, "x"), row("", 1));

    BadRowException error = assertThrows(BadRowException.class, () -> KeypointsCsv.read(file));

    assertEquals(3, error.badRow().lineNumber());
    assertTrue(error.getMessage().contains(file + " line 3 (b_0.jpg)"), error.getMessage());
  }

  @Test
  void csvLimitStopsReading() throws IOException {
    Path file = csv(HEADER, row("a_0.jpg", 1), "bad", row("c_0.jpg", 1), row("d_0.jpg", 1));

    KeypointsCsv.Contents contents = KeypointsCsv.parse(file, 3);

    assertEquals(2, contents.rows().size());
    assertEquals(1, contents.badRows().size());
    assertEquals("c_0.jpg", contents.rows().getLast().fileName());
  }
}
