package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Safetensors#readAll}: one pass through one open file, so that a file renamed over the path
 * while it reads, as a training run saves its checkpoints, is read whole in its old version.
 */
class SafetensorsReadAllTest {
  @TempDir Path folder;

  /** Writes tensors a = [1, 2] and b = [3], with metadata, to a file named {@code name}. */
  private Path oldVersion(String name) throws IOException {
    Path file = folder.resolve(name);
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("a", Tensor.of(new float[] {1, 2}, 2));
    tensors.put("b", Tensor.of(new float[] {3}, 1));
    Safetensors.write(file, tensors, Map.of("epoch", "1"));
    return file;
  }

  /** Writes the new version: a = [10, 20, 30] and b = [40], epoch 2, through a rename. */
  private static void writeNewVersion(Path file) {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("a", Tensor.of(new float[] {10, 20, 30}, 3));
    tensors.put("b", Tensor.of(new float[] {40}, 1));
    try {
      Safetensors.write(file, tensors, Map.of("epoch", "2"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Returns a filter that accepts every name and calls {@code action} once, at the first name. */
  private static Predicate<String> onFirstName(Runnable action) {
    List<String> seen = new ArrayList<>();
    return name -> {
      if (seen.isEmpty()) {
        action.run();
      }
      seen.add(name);
      return true;
    };
  }

  @Test
  void readsNamesTensorsAndMetadata() throws IOException {
    Path file = oldVersion("plain.safetensors");

    Safetensors.Contents contents = Safetensors.readAll(file);

    assertEquals(List.of("a", "b"), contents.names());
    assertArrayEquals(new float[] {1, 2}, contents.tensors().get("a").toFloatArray());
    assertArrayEquals(new float[] {3}, contents.tensors().get("b").toFloatArray());
    assertEquals(Map.of("epoch", "1"), contents.metadata());
  }

  @Test
  void filterLeavesOtherTensorsUndecoded() throws IOException {
    // "step" is int64, which kiln does not decode, so reading it would fail.
    String header =
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]}}";
    Path file = RawSafetensors.write(folder, "mixed.safetensors", header, new byte[12]);

    Safetensors.Contents contents = Safetensors.readAll(file, "w"::equals);

    assertEquals(List.of("w", "step"), contents.names());
    assertEquals(List.of("w"), List.copyOf(contents.tensors().keySet()));
    var e = assertThrows(SafetensorsException.class, () -> Safetensors.readAll(file));
    assertTrue(e.getMessage().contains("has dtype I64"), e.getMessage());
  }

  @Test
  void renameDuringReadKeepsOldVersion() throws IOException {
    Path file = oldVersion("replaced.safetensors");

    Safetensors.Contents contents =
        Safetensors.readAll(file, onFirstName(() -> writeNewVersion(file)));

    assertArrayEquals(new float[] {1, 2}, contents.tensors().get("a").toFloatArray());
    assertArrayEquals(new float[] {3}, contents.tensors().get("b").toFloatArray());
    assertEquals(Map.of("epoch", "1"), contents.metadata());
    // The lazy reader, which opens the file for each tensor, reports the same replacement.
    SafetensorsFile lazy = Safetensors.read(oldVersion("lazy.safetensors"));
    writeNewVersion(lazy.file());
    var e = assertThrows(SafetensorsException.class, () -> lazy.tensor("a"));
    assertTrue(e.getMessage().contains("file changed"), e.getMessage());
  }

  @Test
  void rewriteInPlaceDuringReadIsReported() throws IOException {
    Path file = oldVersion("rewritten.safetensors");
    Path other = folder.resolve("other.safetensors");
    writeNewVersion(other);
    Runnable rewrite =
        () -> {
          try {
            Files.write(file, Files.readAllBytes(other));
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        };

    var e =
        assertThrows(
            SafetensorsException.class, () -> Safetensors.readAll(file, onFirstName(rewrite)));

    assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("file changed while it was being read"), e.getMessage());
  }

  @Test
  void sameSizeRewriteIsReported() throws IOException {
    Path file = oldVersion("same-size.safetensors");
    byte[] bytes = Files.readAllBytes(file);
    FileTime written = Files.getLastModifiedTime(file);
    Runnable rewrite =
        () -> {
          try {
            // The last data byte changes, and the time moves forward by hand, because a rewrite
            // within one tick of the file system's clock keeps the old time.
            bytes[bytes.length - 1] ^= 1;
            Files.write(file, bytes);
            Files.setLastModifiedTime(file, FileTime.fromMillis(written.toMillis() + 1000));
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        };

    var e =
        assertThrows(
            SafetensorsException.class, () -> Safetensors.readAll(file, onFirstName(rewrite)));

    assertTrue(e.getMessage().contains("file changed while it was being read"), e.getMessage());
  }

  @Test
  void fifoIsRejectedWithoutWaiting() throws Exception {
    Path fifo = folder.resolve("pipe.safetensors");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
    assertEquals(0, mkfifo.waitFor(), "mkfifo failed");

    // Opening a FIFO for reading blocks until a writer opens it, so a missing check hangs here.
    for (var read : List.<ThrowingRead>of(Safetensors::read, Safetensors::readAll)) {
      var e =
          assertTimeoutPreemptively(
              Duration.ofSeconds(10),
              () -> assertThrows(SafetensorsException.class, () -> read.apply(fifo)));
      assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
    }
  }

  @Test
  void deviceIsRejected() {
    var e =
        assertThrows(SafetensorsException.class, () -> Safetensors.readAll(Path.of("/dev/zero")));

    assertTrue(e.getMessage().contains("/dev/zero: is not a regular file"), e.getMessage());
  }

  @Test
  void missingFileNamesFileAndReason() {
    Path file = folder.resolve("absent.safetensors");

    var e = assertThrows(NoSuchFileException.class, () -> Safetensors.readAll(file));

    assertEquals(file.toString(), e.getFile());
    assertTrue(e.getMessage().contains("safetensors file not found"), e.getMessage());
  }

  @Test
  void loopOfLinksIsNotCalledMissing() throws IOException {
    Path first = folder.resolve("first.safetensors");
    Path second = folder.resolve("second.safetensors");
    Files.createSymbolicLink(first, second);
    Files.createSymbolicLink(second, first);

    var e = assertThrows(FileSystemException.class, () -> Safetensors.readAll(first));

    assertFalse(e instanceof NoSuchFileException, e.toString());
    assertEquals(first.toString(), e.getFile());
  }

  /** {@link Safetensors#read} or {@link Safetensors#readAll}, as one type. */
  @FunctionalInterface
  private interface ThrowingRead {
    Object apply(Path file) throws IOException;
  }
}
