package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writing and reading {@code options.properties}. */
class TrainOptionsTest {
  /**
   * Maximum length in bytes of a path that Linux opens: PATH_MAX is 4096 and includes the
   * terminating zero byte.
   */
  private static final int MAX_PATH_BYTES = 4095;

  @TempDir Path folder;

  private static TrainOptions options(int epochs) {
    return options(epochs, 0, 0);
  }

  private static TrainOptions options(int epochs, double weightDecay, double timeLimitMinutes) {
    return new TrainOptions(
        Path.of("/data"),
        "default",
        epochs,
        16,
        "adam",
        5e-4,
        weightDecay,
        "l1",
        "cosine",
        7,
        0.2,
        1,
        0,
        timeLimitMinutes,
        false);
  }

  @Test
  void writtenOptionsReadBack() throws IOException {
    options(3).write(folder);

    assertEquals(options(3), TrainOptions.read(folder));
  }

  @Test
  void negativeZeroIsStoredAsZero() throws IOException {
    options(3, -0.0, -0.0).write(folder);

    String text = Files.readString(folder.resolve(TrainOptions.FILE_NAME));
    assertTrue(text.contains("weight_decay=0.0\n"), text);
    assertTrue(text.contains("time_limit_minutes=0.0\n"), text);
    assertEquals(0, Double.compare(0.0, TrainOptions.read(folder).weightDecay()));
  }

  /** An options file that a user edited in Latin-1 is rejected with its line and byte. */
  @Test
  void latin1EditNamesLineAndByte() throws IOException {
    options(3).write(folder);
    Path file = folder.resolve(TrainOptions.FILE_NAME);
    String edited = Files.readString(file) + "# caf" + (char) 0xE9 + "\n";
    Files.write(file, edited.getBytes(StandardCharsets.ISO_8859_1));

    IOException error = assertThrows(IOException.class, () -> TrainOptions.read(folder));

    String message = error.getMessage();
    long line = edited.lines().count();
    assertTrue(message.startsWith(file + ": line " + line + " is not valid UTF-8"), message);
    assertTrue(message.contains("the run's options file"), message);
  }

  /**
   * Puts options.properties at the longest path that Linux opens, so that the longer name of the
   * temporary file next to it fails with ENAMETOOLONG, for any user, root included.
   */
  @Test
  void failedWriteKeepsOldFile() throws IOException {
    Path deep = folderWithPathLength(MAX_PATH_BYTES - 1 - TrainOptions.FILE_NAME.length());
    Path file = deep.resolve(TrainOptions.FILE_NAME);
    options(1).write(folder);
    Files.copy(folder.resolve(TrainOptions.FILE_NAME), file);
    byte[] before = Files.readAllBytes(file);

    FileSystemException error =
        assertThrows(FileSystemException.class, () -> options(3).write(deep));

    assertEquals(file.toString(), error.getFile());
    assertArrayEquals(before, Files.readAllBytes(file));
    assertEquals(1, TrainOptions.read(deep).epochs());
    try (Stream<Path> children = Files.list(deep)) {
      assertEquals(List.of(file), children.toList());
    }
  }

  /** Creates nested folders under {@link #folder} whose absolute path has {@code length} bytes. */
  private Path folderWithPathLength(int length) throws IOException {
    Path path = folder.toAbsolutePath();
    int left = length - path.toString().length();
    while (left > 0) {
      // Each level adds a separator and a name of at most 255 bytes, and the last needs at least 1.
      int name = left <= 201 ? left - 1 : (left - 201 < 2 ? 150 : 200);
      path = path.resolve("d".repeat(name));
      left -= name + 1;
    }
    Files.createDirectories(path);
    assertEquals(length, path.toString().length());
    return path;
  }
}
