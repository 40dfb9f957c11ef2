package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.keypoints.data.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln predict} on real face images: inputs that name the same file more than once, output
 * folders that contain inputs or cannot be written, and a bad image among good ones.
 */
class PredictCommandTest {
  private static final Pattern FILE_ENTRY = Pattern.compile("\"file\": \"([^\"]*)\"");

  @TempDir Path folder;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  /**
   * Runs {@code kiln predict} with the untrained checkpoint, {@code --output} and {@code inputs}.
   */
  private int predict(Path output, Path... inputs) throws IOException {
    Path checkpoint = UntrainedCheckpoint.write(folder);
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    List<String> args = new ArrayList<>();
    args.addAll(List.of("predict", "--checkpoint", checkpoint.toString()));
    args.addAll(List.of("--output", output.toString()));
    for (Path input : inputs) {
      args.add(input.toString());
    }
    return commandLine.execute(args.toArray(String[]::new));
  }

  private static Path face(String name) {
    return TestData.facialKeypoints().resolve("test").resolve(name);
  }

  @Test
  void fileAndItsFolderPredictedOnce() throws IOException {
    Path test = TestData.facialKeypoints().resolve("test");
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Path first = faces.resolve("a.jpg");
    Path second = faces.resolve("b.jpg");
    Files.copy(test.resolve("James_Wolfensohn_00.jpg"), first);
    Files.copy(test.resolve("Kristen_Breitweiser_11.jpg"), second);
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path output = folder.resolve("predictions");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));

    // b.jpg comes first on its own, then again through its folder, which also lists a.jpg, and
    // a.jpg a second time under another spelling of the same path.
    int status =
        commandLine.execute(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            output.toString(),
            second.toString(),
            faces.toString(),
            faces.resolve("..").resolve("faces").resolve("a.jpg").toString());

    assertEquals(0, status, err.toString());
    Matcher entries = FILE_ENTRY.matcher(Files.readString(output.resolve("predictions.json")));
    List<String> files = entries.results().map(match -> match.group(1)).toList();
    assertEquals(List.of(second.toString(), first.toString()), files, "files in predictions.json");
    long printed = out.toString().lines().filter(line -> line.contains(" -> ")).count();
    assertEquals(2, printed, out.toString());
  }

  @Test
  void sameNamesGetDistinctOverlays() throws IOException {
    Path test = TestData.facialKeypoints().resolve("test");
    Path left = Files.createDirectories(folder.resolve("x"));
    Path right = Files.createDirectories(folder.resolve("y"));
    Files.copy(test.resolve("James_Wolfensohn_00.jpg"), left.resolve("a.jpg"));
    Files.copy(test.resolve("Kristen_Breitweiser_11.jpg"), right.resolve("a.jpg"));
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path output = folder.resolve("predictions");
    StringWriter err = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(new StringWriter(), true));
    commandLine.setErr(new PrintWriter(err, true));

    int status =
        commandLine.execute(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            output.toString(),
            left.resolve("a.jpg").toString(),
            right.resolve("a.jpg").toString());

    assertEquals(0, status, err.toString());
    assertTrue(Files.isRegularFile(output.resolve("a.png")), "missing a.png");
    assertTrue(Files.isRegularFile(output.resolve("a-2.png")), "missing a-2.png");
    String json = Files.readString(output.resolve("predictions.json"));
    assertTrue(json.contains("\"overlay\": \"a-2.png\""), json);
  }

  @Test
  void outputWithInputsRejected() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.jpg"));
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("a.png"));
    byte[] original = Files.readAllBytes(faces.resolve("a.png"));

    // The same folder under another spelling, so that only a comparison of real paths finds it.
    int status = predict(faces.resolve("..").resolve("faces"), faces);

    assertEquals(1, status, out.toString());
    String message = err.toString();
    assertTrue(message.contains(faces.resolve("a.jpg").toString()), message);
    assertTrue(message.contains("pass another --output"), message);
    assertArrayEquals(original, Files.readAllBytes(faces.resolve("a.png")), "a.png was replaced");
    assertFalse(Files.exists(faces.resolve("predictions.json")), "predictions.json was written");
  }

  @Test
  void linkedInputInOutputRejected() throws IOException {
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Path link = output.resolve("a.png");
    Files.createSymbolicLink(link, face("James_Wolfensohn_00.jpg"));

    // The link's target is elsewhere, but a.png's overlay would replace the link itself.
    int status = predict(output, link);

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains(link.toString()), err.toString());
    assertTrue(Files.isSymbolicLink(link), "the input link was replaced");
  }

  @Test
  void badImageWritesNothing() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.jpg"));
    Files.writeString(faces.resolve("b.jpg"), "not a JPEG");
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("c.jpg"));
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Files.writeString(output.resolve("predictions.json"), "previous run");

    int status = predict(output, faces);

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains("b.jpg"), err.toString());
    assertEquals("previous run", Files.readString(output.resolve("predictions.json")));
    assertFalse(Files.exists(output.resolve("a.png")), "a.png was written");
    assertFalse(Files.exists(output.resolve("c.png")), "c.png was written");
  }

  @Test
  void uncreatableOutputRejectedFirst() throws IOException {
    Path file = Files.writeString(folder.resolve("afile"), "");
    Path bad = Files.writeString(folder.resolve("b.jpg"), "not a JPEG");
    Path output = file.resolve("predictions");

    // The bad image would fail too, so the message shows which check ran first.
    int status = predict(output, bad);

    assertEquals(1, status, out.toString());
    assertEquals(
        "kiln predict: "
            + output
            + ": --output cannot be created because "
            + file
            + " is not a folder; pass another --output",
        err.toString().strip());
  }

  @Test
  void readOnlyOutputRejectedFirst() throws IOException {
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Path bad = Files.writeString(folder.resolve("b.jpg"), "not a JPEG");
    Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("r-xr-xr-x"));
    try {
      assumeFalse(
          Files.isWritable(output), "skipped: this user (root) may write to read-only folders");

      int status = predict(output, bad);

      assertEquals(1, status, out.toString());
      String message = err.toString();
      assertTrue(message.contains("permission denied"), message);
      assertFalse(message.contains("b.jpg"), message);
    } finally {
      Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }
}
