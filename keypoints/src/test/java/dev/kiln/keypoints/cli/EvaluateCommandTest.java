package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
    Path checkpoint = UntrainedCheckpoint.write(folder);
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));

    int status =
        commandLine.execute(
            "evaluate",
            "--checkpoint",
            checkpoint.toString(),
            "--csv",
            csv.toString(),
            "--images",
            images.toString(),
            "--output",
            folder.resolve("evaluation").toString());

    assertEquals(0, status, err.toString());
    String expected = "faces: 5 from " + csv + ", images in " + images;
    assertTrue(out.toString().lines().anyMatch(expected::equals), out.toString());
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
