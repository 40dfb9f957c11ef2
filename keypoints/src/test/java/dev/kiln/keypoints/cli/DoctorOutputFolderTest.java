package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln doctor} on one face, which the identity split puts into training, so no validation
 * face is left. The command stops with exit code 2 and leaves the output folder as it was.
 */
class DoctorOutputFolderTest {
  @TempDir Path folder;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  /** Runs {@code kiln doctor} on the first face of the dataset, writing to {@code output}. */
  private int examineOneFace(Path output) {
    return examine(1, output);
  }

  /** Runs {@code kiln doctor} on the first {@code rows} rows of the dataset. */
  private int examine(int rows, Path output) {
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    return commandLine.execute(
        "doctor",
        "--data",
        TestData.facialKeypoints().toString(),
        "--limit",
        Integer.toString(rows),
        "--output",
        output.toString());
  }

  private static List<String> listing(Path path) throws IOException {
    try (Stream<Path> children = Files.list(path)) {
      return children.map(child -> child.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void tooFewFacesAdvisesLimit() {
    int status = examineOneFace(folder.resolve("doctor"));

    assertEquals(DoctorCommand.NOT_EXAMINED, status, out.toString());
    String message = err.toString();
    assertTrue(message.startsWith("kiln doctor: "), message);
    assertTrue(message.contains("1 training and 0 validation faces"), message);
    assertTrue(message.contains("needs at least 2 of each"), message);
    assertTrue(message.contains("a larger --limit"), message);
    assertTrue(out.toString().contains("; 1 face loaded, 1 for training"), out.toString());
    assertFalse(out.toString().contains("examining"), out.toString());
  }

  /** Ten rows give one validation face, which would make no batch and a report of NaN losses. */
  @Test
  void oneValidationFaceRejected() {
    int status = examine(10, folder.resolve("doctor"));

    assertEquals(DoctorCommand.NOT_EXAMINED, status, out.toString());
    assertTrue(err.toString().contains("9 training and 1 validation faces"), err.toString());
  }

  @Test
  void tooFewFacesRemovesCreatedFolders() throws IOException {
    Path output = folder.resolve("new").resolve("deeper").resolve("doctor");

    int status = examineOneFace(output);

    assertEquals(DoctorCommand.NOT_EXAMINED, status, err.toString());
    assertFalse(Files.exists(folder.resolve("new")), "the folders it created are gone");
    assertEquals(List.of(), listing(folder));
  }

  @Test
  void tooFewFacesKeepsExistingFolders() throws IOException {
    Path empty = Files.createDirectory(folder.resolve("empty"));
    Path notes = Files.createDirectories(folder.resolve("notes"));
    Files.writeString(notes.resolve("todo.txt"), "kept");

    int emptyStatus = examineOneFace(empty);
    int notesStatus = examineOneFace(notes);

    assertEquals(DoctorCommand.NOT_EXAMINED, emptyStatus, err.toString());
    assertEquals(DoctorCommand.NOT_EXAMINED, notesStatus, err.toString());
    assertTrue(Files.isDirectory(empty), "the empty folder that existed before is kept");
    assertEquals(List.of(), listing(empty));
    assertEquals(List.of("todo.txt"), listing(notes));
    assertEquals("kept", Files.readString(notes.resolve("todo.txt")));
  }
}
