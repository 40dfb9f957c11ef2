package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The messages that {@code kiln} prints for NIO's file exceptions, whose own message is only the
 * path, and for the file errors of {@code predict} and {@code doctor}.
 */
class FileErrorMessageTest {
  @TempDir Path folder;

  private final StringWriter err = new StringWriter();

  private int kiln(String... args) {
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(new StringWriter(), true));
    commandLine.setErr(new PrintWriter(err, true));
    return commandLine.execute(args);
  }

  @Test
  void fileExceptionsDescribed() {
    assertEquals("/a: not found", Main.describe(new NoSuchFileException("/a")));
    assertEquals("/a: permission denied", Main.describe(new AccessDeniedException("/a")));
    assertEquals("/a: already exists", Main.describe(new FileAlreadyExistsException("/a")));
    assertEquals("/a: is not a folder", Main.describe(new NotDirectoryException("/a")));
    assertEquals("/a: folder is not empty", Main.describe(new DirectoryNotEmptyException("/a")));
  }

  @Test
  void otherFileAndReasonDescribed() {
    assertEquals(
        "/a: permission denied (other file: /b)",
        Main.describe(new AccessDeniedException("/a", "/b", null)));
    assertEquals(
        "/a: Read-only file system",
        Main.describe(new FileSystemException("/a", null, "Read-only file system")));
    assertEquals(
        "/a: Is a directory (other file: /b)",
        Main.describe(new FileSystemException("/a", "/b", "Is a directory")));
    assertEquals(
        "/a: not found", Main.describe(new UncheckedIOException(new NoSuchFileException("/a"))));
    assertEquals("bad header", Main.describe(new IOException("bad header")));
  }

  @Test
  void missingCheckpointNotFound() throws IOException {
    Path checkpoint = folder.resolve("nope.safetensors");
    Path image = Files.writeString(folder.resolve("a.jpg"), "not read");

    int status =
        kiln(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            folder.resolve("out").toString(),
            image.toString());

    assertEquals(1, status);
    assertEquals(
        "kiln predict: "
            + checkpoint
            + ": --checkpoint not found; pass best.safetensors or last.safetensors from a training"
            + " run folder, such as runs/NAME/best.safetensors",
        err.toString().strip());
  }

  @Test
  void evaluateMissingCheckpointNotFound() {
    Path checkpoint = folder.resolve("nope.safetensors");

    // The CSV is missing too, so the message shows that the checkpoint is checked first.
    int status =
        kiln(
            "evaluate",
            "--checkpoint",
            checkpoint.toString(),
            "--csv",
            folder.resolve("absent.csv").toString());

    assertEquals(1, status);
    assertEquals(
        "kiln evaluate: "
            + checkpoint
            + ": --checkpoint not found; pass best.safetensors or last.safetensors from a training"
            + " run folder, such as runs/NAME/best.safetensors",
        err.toString().strip());
  }

  @Test
  void checkpointFifoRejectedUnread() throws Exception {
    Path fifo = folder.resolve("best.safetensors");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assumeTrue(mkfifo.waitFor() == 0, "skipped: mkfifo failed");

    // Opening the FIFO for reading would block this test until the timeout.
    int status =
        assertTimeoutPreemptively(
            Duration.ofSeconds(20),
            () -> kiln("evaluate", "--checkpoint", fifo.toString(), "--csv", "absent.csv"));

    assertEquals(1, status);
    assertTrue(
        err.toString().contains(fifo + ": --checkpoint is not a regular file"), err.toString());
  }

  @Test
  void checkpointFolderRejected() throws IOException {
    Path image = Files.writeString(folder.resolve("a.jpg"), "not read");

    int status =
        kiln(
            "predict",
            "--checkpoint",
            folder.toString(),
            "--output",
            folder.resolve("out").toString(),
            image.toString());

    assertEquals(1, status);
    assertEquals(
        "kiln predict: "
            + folder
            + ": --checkpoint is a folder; pass best.safetensors or last.safetensors from a"
            + " training run folder, such as runs/NAME/best.safetensors",
        err.toString().strip());
  }

  @Test
  void outputFileRejected() throws IOException {
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path image = Files.writeString(folder.resolve("a.jpg"), "not read");
    Path output = Files.writeString(folder.resolve("afile"), "");

    int status =
        kiln(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            output.toString(),
            image.toString());

    assertEquals(1, status);
    assertEquals(
        "kiln predict: " + output + ": --output is not a folder; pass another --output",
        err.toString().strip());
  }

  @Test
  void doctorRunWithoutOptionsNotFound() throws IOException {
    Path run = Files.createDirectory(folder.resolve("run"));

    int status = kiln("doctor", "--run", run.toString());

    assertEquals(2, status);
    assertEquals(
        "kiln doctor: " + run.resolve("options.properties") + ": not found",
        err.toString().strip());
  }

  @Test
  void unencodableNameNamesTheFileAndTheLocale() {
    String message =
        Main.describe(
            new InvalidPathException(
                "faces/caf\u00e9.png", "Malformed input or input contains unmappable characters"));

    assertTrue(
        message.startsWith(
            "faces/caf\u00e9.png: Malformed input or input contains unmappable characters in the"
                + " file-name encoding of this locale ("),
        message);
    assertTrue(
        message.endsWith(
            "run kiln with a UTF-8 locale, such as LC_ALL=C.UTF-8, or rename" + " the file"),
        message);
  }
}
