package dev.kiln.keypoints.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes files so that readers see either the old file or the whole new one: the content goes to a
 * temporary file in the same folder, which is then renamed over the target. A failure leaves the
 * old file in place and removes the temporary one.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Content written to the temporary file. */
  @FunctionalInterface
  public interface Content {
    void writeTo(Path temporary) throws IOException;
  }

  /** Writes {@code content} to {@code file} atomically, creating missing parent folders. */
  public static void write(Path file, Content content) throws IOException {
    Path folder = file.toAbsolutePath().getParent();
    Files.createDirectories(folder);
    Path temporary = Files.createTempFile(folder, "." + file.getFileName() + ".", ".tmp");
    try {
      content.writeTo(temporary);
      Files.move(
          temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  /** Writes {@code text} as UTF-8 to {@code file} atomically. */
  public static void writeString(Path file, CharSequence text) throws IOException {
    write(file, temporary -> Files.writeString(temporary, text, StandardCharsets.UTF_8));
  }

  /** Copies {@code source} to {@code file} atomically. */
  public static void copy(Path source, Path file) throws IOException {
    write(file, temporary -> Files.copy(source, temporary, StandardCopyOption.REPLACE_EXISTING));
  }
}
