package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code kiln predict} on real face images, with inputs that name the same file more than once. */
class PredictCommandTest {
  private static final Pattern FILE_ENTRY = Pattern.compile("\"file\": \"([^\"]*)\"");

  @TempDir Path folder;

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
}
