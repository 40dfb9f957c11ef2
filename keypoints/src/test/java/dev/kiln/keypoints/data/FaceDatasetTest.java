package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.FaceDataset.OnBadRow;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading a small dataset folder with good and bad rows under both policies. */
class FaceDatasetTest {

  /** Keypoints are scaled in double precision, so only rounding error is allowed. */
  private static final double KEYPOINT_TOLERANCE = 1e-9;

  private static final int WIDTH = 40;
  private static final int HEIGHT = 30;

  @TempDir Path dir;
  private Path images;
  private Path csv;

  /**
   * Builds 8 rows: a, b and h are good, c's image is missing, d's is truncated, e's is 10x10 (below
   * the minimum of 20), f's CSV row has a value that is not a number, g's keypoint lies far
   * outside.
   */
  @BeforeEach
  void buildFolder() throws IOException {
    images = Files.createDirectory(dir.resolve("images"));
    byte[] png = TestImages.grayPng(WIDTH, HEIGHT);
    TestImages.write(images, "a_00.png", png);
    TestImages.write(images, "b_00.jpg", TestImages.jpeg(TestImages.grayRamp(WIDTH, HEIGHT)));
    TestImages.write(images, "d_00.png", Arrays.copyOf(png, png.length / 2));
    TestImages.write(images, "e_00.png", TestImages.grayPng(10, 10));
    TestImages.write(images, "f_00.png", png);
    TestImages.write(images, "g_00.png", png);
    TestImages.write(images, "h_00.png", png);

    List<String> lines = new ArrayList<>();
    lines.add(KeypointsCsvTest.HEADER);
    for (String name : List.of("a_00.png", "b_00.jpg", "c_00.png", "d_00.png", "e_00.png")) {
      lines.add(line(name, inside()));
    }
    lines.add(line("f_00.png", inside()).replaceFirst(",10\\.0,", ",oops,"));
    double[] far = inside();
    far[2 * 5] = 3 * WIDTH;
    lines.add(line("g_00.png", far));
    lines.add(line("h_00.png", inside()));
    csv = Files.write(dir.resolve("points.csv"), lines);
  }

  private static LoadOptions options(OnBadRow policy) {
    return LoadOptions.defaults().withOnBadRow(policy).withMinSize(20).withThreads(2);
  }

  @Test
  void skipReportsExactlyBadRows() throws IOException {
    FaceDataset.Loaded loaded = FaceDataset.load(csv, images, options(OnBadRow.SKIP));
    List<BadRow> skipped = loaded.report().skipped();

    assertEquals(List.of("a_00.png", "b_00.jpg", "h_00.png"), names(loaded.samples()));
    assertEquals(3, loaded.report().loaded());
    assertEquals(List.of(4, 5, 6, 7, 8), skipped.stream().map(BadRow::lineNumber).toList());
    assertTrue(skipped.get(0).reason().contains("image not found"), skipped.get(0).reason());
    assertTrue(skipped.get(1).reason().contains("truncated PNG"), skipped.get(1).reason());
    assertTrue(skipped.get(2).reason().contains("10x10, smaller"), skipped.get(2).reason());
    assertTrue(skipped.get(3).reason().contains("not a number"), skipped.get(3).reason());
    assertTrue(skipped.get(4).reason().contains("keypoint 5"), skipped.get(4).reason());
    assertTrue(skipped.get(4).reason().contains("more than 50%"), skipped.get(4).reason());
  }

  @Test
  void farKeypointPrintedShort() {
    assertEquals("120.0", RowLoader.coordinate(120));
    assertEquals("-3.5", RowLoader.coordinate(-3.5));
    assertEquals("1.000e+308", RowLoader.coordinate(1e308));
    assertEquals("-2.500e+07", RowLoader.coordinate(-2.5e7));
  }

  @Test
  void skipSummaryListsEveryRow() throws IOException {
    String summary = FaceDataset.load(csv, images, options(OnBadRow.SKIP)).report().summary();

    assertTrue(summary.startsWith("Loaded 3 of 8 rows"), summary);
    for (int line = 4; line <= 8; line++) {
      assertTrue(summary.contains(csv + " line " + line + " ("), summary);
    }
  }

  @Test
  void failNamesFirstBadRow() {
    BadRowException error =
        assertThrows(
            BadRowException.class, () -> FaceDataset.load(csv, images, options(OnBadRow.FAIL)));

    assertEquals(4, error.badRow().lineNumber());
    assertTrue(error.getMessage().contains(csv + " line 4 (c_00.png)"), error.getMessage());
    assertTrue(error.getMessage().contains("image not found"), error.getMessage());
    assertTrue(error.getMessage().contains("after 2 of 8 rows"), error.getMessage());
  }

  @Test
  void failNamesEarlierCsvRowFirst() throws IOException {
    List<String> lines = Files.readAllLines(csv);
    lines.add(3, line("z_00.png", inside()).replace(",11.0,", ",inf,"));
    Files.write(csv, lines);

    BadRowException error =
        assertThrows(
            BadRowException.class, () -> FaceDataset.load(csv, images, options(OnBadRow.FAIL)));

    assertEquals(4, error.badRow().lineNumber());
    assertTrue(error.getMessage().contains("not a finite coordinate"), error.getMessage());
  }

  @Test
  void loadKeepsCsvOrder() throws IOException {
    Path folder = Files.createDirectory(dir.resolve("ordered"));
    List<String> lines = new ArrayList<>();
    lines.add(KeypointsCsvTest.HEADER);
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 24; i++) {
      // Large images first, so later rows tend to finish decoding earlier.
      int side = 400 - 15 * i;
      String name = "person" + i + "_00.png";
      TestImages.write(folder, name, TestImages.grayPng(side, side));
      lines.add(line(name, inside()));
      expected.add(name);
    }
    Path orderedCsv = Files.write(dir.resolve("ordered.csv"), lines);

    FaceDataset.Loaded loaded =
        FaceDataset.load(orderedCsv, folder, options(OnBadRow.FAIL).withThreads(4));

    assertEquals(expected, names(loaded.samples()));
  }

  @Test
  void rescaleMovesKeypointsWithImage() throws IOException {
    double[] points = inside();
    points[0] = WIDTH / 2.0;
    points[1] = HEIGHT / 2.0;
    points[2] = WIDTH;
    points[3] = HEIGHT;
    Files.write(csv, List.of(KeypointsCsvTest.HEADER, line("a_00.png", points)));

    LoadOptions options = options(OnBadRow.FAIL).withShorterSide(24);
    Sample sample = FaceDataset.load(csv, images, options).samples().getFirst();

    assertEquals(32, sample.image().width(), "width: 40 * 24 / 30");
    assertEquals(24, sample.image().height(), "height");
    assertEquals(16, sample.x(0), KEYPOINT_TOLERANCE, "centre x");
    assertEquals(12, sample.y(0), KEYPOINT_TOLERANCE, "centre y");
    assertEquals(32, sample.x(1), KEYPOINT_TOLERANCE, "corner x");
    assertEquals(24, sample.y(1), KEYPOINT_TOLERANCE, "corner y");
  }

  @Test
  void loadMissingFolderFails() {
    Path absent = dir.resolve("absent");

    assertThrows(
        NoSuchFileException.class, () -> FaceDataset.load(csv, absent, options(OnBadRow.SKIP)));
  }

  @Test
  void loadRejectsPathOutsideFolder() throws IOException {
    Files.write(csv, List.of(KeypointsCsvTest.HEADER, line("../points.csv", inside())));

    FaceDataset.Loaded loaded = FaceDataset.load(csv, images, options(OnBadRow.SKIP));

    assertTrue(
        loaded.report().skipped().getFirst().reason().contains("path segment \"..\""),
        loaded.report().summary());
  }

  @Test
  void loadReadsImageInSubfolder() throws IOException {
    Path subfolder = Files.createDirectory(images.resolve("person"));
    TestImages.write(subfolder, "a_00.png", TestImages.grayPng(WIDTH, HEIGHT));
    Files.write(csv, List.of(KeypointsCsvTest.HEADER, line("person/a_00.png", inside())));

    FaceDataset.Loaded loaded = FaceDataset.load(csv, images, options(OnBadRow.FAIL));

    assertEquals(List.of("person/a_00.png"), names(loaded.samples()));
  }

  @Test
  void coincidentEyeCornersSkippedOrFatal() throws IOException {
    double[] closed = inside();
    closed[2 * 45] = closed[2 * 36];
    closed[2 * 45 + 1] = closed[2 * 36 + 1];
    Files.write(
        csv,
        List.of(
            KeypointsCsvTest.HEADER,
            line("a_00.png", inside()),
            line("h_00.png", closed),
            line("f_00.png", inside())));

    FaceDataset.Loaded loaded = FaceDataset.load(csv, images, options(OnBadRow.SKIP));
    BadRowException error =
        assertThrows(
            BadRowException.class, () -> FaceDataset.load(csv, images, options(OnBadRow.FAIL)));

    assertEquals(List.of("a_00.png", "f_00.png"), names(loaded.samples()));
    assertEquals(1, loaded.report().skippedCount());
    String summary = loaded.report().summary();
    assertTrue(summary.contains(csv + " line 3 (h_00.png): columns 74-75 and 92-93"), summary);
    assertEquals(3, error.badRow().lineNumber());
    assertTrue(error.getMessage().contains(csv + " line 3 (h_00.png)"), error.getMessage());
    assertTrue(error.getMessage().contains("points 36 and 45"), error.getMessage());
    assertTrue(error.getMessage().contains("--skip-bad-rows"), error.getMessage());
  }

  /** Returns 68 points spread over the inside of a WIDTH x HEIGHT image. */
  private static double[] inside() {
    double[] points = new double[2 * Sample.POINTS];
    for (int i = 0; i < Sample.POINTS; i++) {
      points[2 * i] = 10 + i % 20;
      points[2 * i + 1] = 5 + i % 20;
    }
    return points;
  }

  private static String line(String name, double[] points) {
    return name
        + ","
        + IntStream.range(0, points.length)
            .mapToObj(i -> Double.toString(points[i]))
            .collect(Collectors.joining(","));
  }

  private static List<String> names(List<Sample> samples) {
    return samples.stream().map(Sample::name).toList();
  }
}
