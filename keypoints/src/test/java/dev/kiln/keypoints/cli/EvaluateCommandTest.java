package dev.kiln.keypoints.cli;

import static java.util.stream.Collectors.joining;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code kiln evaluate} on a few real test faces. */
class EvaluateCommandTest {
  @TempDir Path folder;

  @Test
  void summaryNamesCsvAndImages() throws IOException {
    Path data = TestData.facialKeypoints();
    Path images = data.resolve("test");
    Path csv = folder.resolve("five_faces.csv");
    List<String> rows =
        Files.readAllLines(data.resolve("test_frames_keypoints.csv"), StandardCharsets.UTF_8);
    Files.write(csv, rows.subList(0, 6), StandardCharsets.UTF_8);

    Outcome outcome = evaluate(csv, images, false);

    assertEquals(0, outcome.status(), outcome.err());
    String expected = "faces: 5 from " + csv + ", images in " + images;
    assertTrue(outcome.out().lines().anyMatch(expected::equals), outcome.out());
  }

  @Test
  void outputFileRejectedBeforeWork() throws IOException {
    Path output = Files.writeString(folder.resolve("notes.csv"), "kept");
    StringWriter err = new StringWriter();

    int status = evaluateWithoutCsv(output, err);

    assertEquals(1, status, err.toString());
    assertTrue(
        err.toString().contains(output + ": --output is not a folder; pass another --output"),
        err.toString());
    assertEquals("kept", Files.readString(output));
  }

  @Test
  void outputPlacesCheckedBeforeWork() throws IOException {
    Path output = Files.createDirectory(folder.resolve("report"));
    Path blocking = Files.createDirectory(output.resolve("ced.png"));
    Path elsewhere = Files.writeString(folder.resolve("elsewhere.json"), "kept");
    Path link = Files.createSymbolicLink(output.resolve("evaluation.json"), elsewhere);
    StringWriter linkErr = new StringWriter();
    StringWriter folderErr = new StringWriter();

    int linkStatus = evaluateWithoutCsv(output, linkErr);
    Files.delete(link);
    int folderStatus = evaluateWithoutCsv(output, folderErr);

    assertEquals(1, linkStatus, linkErr.toString());
    assertTrue(linkErr.toString().contains(link + ": is a symbolic link"), linkErr.toString());
    assertEquals(1, folderStatus, folderErr.toString());
    assertTrue(folderErr.toString().contains(blocking + ": is a folder"), folderErr.toString());
    assertEquals("kept", Files.readString(elsewhere));
  }

  /**
   * Runs {@code kiln evaluate} into {@code output} with a CSV that does not exist, so that any work
   * before the output checks would fail with another message, and returns its exit status.
   */
  private int evaluateWithoutCsv(Path output, StringWriter err) throws IOException {
    return kiln(
        new StringWriter(),
        err,
        "evaluate",
        "--checkpoint",
        UntrainedCheckpoint.write(folder).toString(),
        "--csv",
        folder.resolve("absent.csv").toString(),
        "--images",
        TestData.facialKeypoints().resolve("test").toString(),
        "--output",
        output.toString());
  }

  @Test
  void coincidentEyeCornersSkippedWhenAsked() throws IOException {
    Path data = TestData.facialKeypoints();
    Path csv = folder.resolve("three_faces.csv");
    List<String> rows =
        new ArrayList<>(
            Files.readAllLines(data.resolve("test_frames_keypoints.csv"), StandardCharsets.UTF_8)
                .subList(0, 4));
    String[] fields = rows.get(2).split(",");
    fields[1 + 2 * 45] = fields[1 + 2 * 36];
    fields[1 + 2 * 45 + 1] = fields[1 + 2 * 36 + 1];
    rows.set(2, String.join(",", fields));
    Files.write(csv, rows, StandardCharsets.UTF_8);

    Outcome failing = evaluate(csv, data.resolve("test"), false);
    boolean failWrote = Files.exists(folder.resolve("evaluation/evaluation.json"));
    Outcome skipping = evaluate(csv, data.resolve("test"), true);

    assertEquals(1, failing.status(), failing.out());
    assertTrue(failing.err().contains(csv + " line 3 ("), failing.err());
    assertTrue(failing.err().contains("points 36 and 45"), failing.err());
    assertFalse(failWrote, "a failed evaluation writes no report");
    assertEquals(0, skipping.status(), skipping.err());
    assertTrue(skipping.out().contains(csv + " line 3 ("), skipping.out());
    assertTrue(skipping.out().contains("faces: 2 from " + csv), skipping.out());
  }

  /**
   * A face crop under the detector's minimum side is a bad row of the CSV, which names its line and
   * file, instead of a detector error that names only its place in a batch.
   */
  @Test
  void tinyImageIsBadRow() throws IOException {
    Path data = TestData.facialKeypoints();
    Path images = Files.createDirectory(folder.resolve("images"));
    List<String> rows =
        new ArrayList<>(
            Files.readAllLines(data.resolve("test_frames_keypoints.csv"), StandardCharsets.UTF_8)
                .subList(0, 3));
    for (String row : rows.subList(1, 3)) {
      String name = row.substring(0, row.indexOf(','));
      Files.copy(data.resolve("test").resolve(name), images.resolve(name));
    }
    BufferedImage tiny = new BufferedImage(12, 14, BufferedImage.TYPE_BYTE_GRAY);
    ImageIO.write(tiny, "png", images.resolve("tiny.png").toFile());
    StringBuilder tinyRow = new StringBuilder("tiny.png");
    for (int point = 0; point < 68; point++) {
      // Inside the 12x14 image, with the outer eye corners (36 and 45) over a pixel apart.
      tinyRow.append(',').append(2 + point % 8).append(',').append(3 + point / 10 % 8);
    }
    rows.add(2, tinyRow.toString());
    Path csv = folder.resolve("with_tiny.csv");
    Files.write(csv, rows, StandardCharsets.UTF_8);

    Outcome failing = evaluate(csv, images, false);
    Outcome skipping = evaluate(csv, images, true);

    assertEquals(1, failing.status(), failing.out());
    assertTrue(failing.err().contains(csv + " line 3 (tiny.png)"), failing.err());
    assertTrue(failing.err().contains("12x14"), failing.err());
    assertEquals(0, skipping.status(), skipping.err());
    assertTrue(skipping.out().contains("faces: 2 from " + csv), skipping.out());
  }

  /** Exit status and printed text of one command line. */
  private record Outcome(int status, String out, String err) {}

  /**
   * Evaluates an untrained checkpoint on {@code csv} with images from {@code images} into the
   * folder evaluation, with {@code --skip-bad-rows} where {@code skipBadRows} is true.
   */
  private Outcome evaluate(Path csv, Path images, boolean skipBadRows) throws IOException {
    Path checkpoint = UntrainedCheckpoint.write(folder);
    List<String> arguments =
        new ArrayList<>(
            List.of(
                "evaluate",
                "--checkpoint",
                checkpoint.toString(),
                "--csv",
                csv.toString(),
                "--images",
                images.toString(),
                "--output",
                folder.resolve("evaluation").toString()));
    if (skipBadRows) {
      arguments.add("--skip-bad-rows");
    }
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int status = kiln(out, err, arguments.toArray(String[]::new));
    return new Outcome(status, out.toString(), err.toString());
  }

  /** Runs the command line with its failure handler and returns the exit status. */
  private static int kiln(StringWriter out, StringWriter err, String... arguments) {
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    return commandLine.execute(arguments);
  }

  @Test
  void defaultImageFolderFollowsCsvName() throws IOException {
    Path data = Files.createDirectories(folder.resolve("facial-keypoints"));
    Files.createDirectory(data.resolve("training"));

    assertEquals(
        data.resolve("training"),
        EvaluateCommand.defaultImageFolder(data.resolve("training_frames_keypoints.csv")));
    assertEquals(
        data.resolve("test"),
        EvaluateCommand.defaultImageFolder(data.resolve("mytest_frames_keypoints.csv")),
        "no mytest/ beside it, so test/");
    assertEquals(
        data.resolve("test"), EvaluateCommand.defaultImageFolder(data.resolve("faces.csv")));
    assertEquals(
        data.resolve("test"),
        EvaluateCommand.defaultImageFolder(data.resolve("_frames_keypoints.csv")));
  }

  @Test
  void missingDefaultImageFolderNamesImagesOption() throws IOException {
    Path csv = Files.writeString(folder.resolve("faces.csv"), "unused");
    Path checkpoint = UntrainedCheckpoint.write(folder);
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();

    int status =
        kiln(out, err, "evaluate", "--checkpoint", checkpoint.toString(), "--csv", csv.toString());

    assertEquals(1, status, err.toString());
    assertTrue(
        err.toString().contains(folder.resolve("test") + ": image folder not found"),
        err.toString());
    assertTrue(err.toString().contains("pass --images FOLDER"), err.toString());
  }

  /** Each wrong path is the one that the message names, whichever of the two is given. */
  @Test
  void wrongPathsNamedForWhatTheyAre() throws IOException {
    Path checkpoint = UntrainedCheckpoint.write(folder);
    // A header alone, so that the CSV passes and the image folder's check comes next.
    String header =
        "Names," + IntStream.range(0, 136).mapToObj(Integer::toString).collect(joining(","));
    Path csv = Files.writeString(folder.resolve("faces.csv"), header + "\n");
    Path images = Files.createDirectory(folder.resolve("images"));
    Path missing = folder.resolve("missing.csv");

    assertEvaluateFails(checkpoint, missing + ": keypoint CSV file not found", "--csv", missing);
    assertEvaluateFails(
        checkpoint,
        images + ": is a folder, but a keypoint CSV file was expected",
        "--csv",
        images,
        "--images",
        images);
    assertEvaluateFails(
        checkpoint,
        images + ": is a folder, but a keypoint CSV file was expected",
        "--csv",
        images);
    assertEvaluateFails(
        checkpoint,
        csv + ": is a file, but the images must be in a folder",
        "--csv",
        csv,
        "--images",
        csv);
  }

  /** Runs evaluate with {@code options} and checks that it fails with {@code message}. */
  private void assertEvaluateFails(Path checkpoint, String message, Object... options) {
    List<String> args = new ArrayList<>(List.of("evaluate", "--checkpoint", checkpoint.toString()));
    for (Object option : options) {
      args.add(option.toString());
    }
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();

    int status = kiln(out, err, args.toArray(String[]::new));

    assertEquals(1, status, err.toString());
    assertTrue(err.toString().contains(message), err.toString());
  }

  @Test
  void helpPrintsPercentWithoutWarning() {
    StringWriter out = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(out, true));
    // picocli reports a description that is not a valid format string on System.err.
    ByteArrayOutputStream warnings = new ByteArrayOutputStream();
    PrintStream systemErr = System.err;
    System.setErr(new PrintStream(warnings, true, StandardCharsets.UTF_8));
    int status;
    try {
      status = commandLine.execute("evaluate", "--help");
    } finally {
      System.setErr(systemErr);
    }

    assertEquals(0, status);
    assertEquals("", warnings.toString(StandardCharsets.UTF_8));
    String help = out.toString().replaceAll("\\s+", " ");
    assertTrue(help.contains("the failure rates at 8% and 10%,"), help);
  }
}
