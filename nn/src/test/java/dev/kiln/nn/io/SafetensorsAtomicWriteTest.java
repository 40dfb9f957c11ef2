package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failures part-way through a write. The channel decorator simulates a disk that fills up, because
 * it passes a fixed number of bytes through and then throws.
 */
class SafetensorsAtomicWriteTest {
  @TempDir Path folder;

  private Path file;
  private byte[] oldBytes;
  private Map<String, Tensor> newTensors;

  @BeforeEach
  void writeOldFile() throws Exception {
    file = folder.resolve("model.safetensors");
    Safetensors.write(file, Map.of("old", Tensor.of(new float[] {1, 2, 3}, 3)), Map.of("v", "1"));
    oldBytes = Files.readAllBytes(file);

    newTensors = new LinkedHashMap<>();
    newTensors.put("a", Tensor.of(new double[1000], 10, 100));
    newTensors.put("b", Tensor.of(new float[500], 500));
  }

  /** Returns a decorator whose channel accepts {@code limit} bytes and then throws. */
  private static UnaryOperator<WritableByteChannel> failAfter(long limit, RuntimeException error) {
    return channel ->
        new WritableByteChannel() {
          private long written;

          @Override
          public int write(ByteBuffer source) throws IOException {
            long allowed = limit - written;
            if (allowed <= 0) {
              if (error != null) {
                throw error;
              }
              throw new IOException("simulated full disk after " + limit + " bytes");
            }
            ByteBuffer part = source.slice();
            part.limit((int) Math.min(part.remaining(), allowed));
            int count = channel.write(part);
            source.position(source.position() + count);
            written += count;
            return count;
          }

          @Override
          public boolean isOpen() {
            return channel.isOpen();
          }

          @Override
          public void close() throws IOException {
            channel.close();
          }
        };
  }

  private List<String> folderContents() throws IOException {
    try (Stream<Path> paths = Files.list(folder)) {
      List<String> names = new ArrayList<>();
      paths.forEach(path -> names.add(path.getFileName().toString()));
      return names;
    }
  }

  @Test
  void failedWriteKeepsOldFile() throws Exception {
    // 5000 bytes ends inside the data of tensor "a", after the header.
    assertThrows(
        IOException.class,
        () -> SafetensorsWriter.write(file, newTensors, Map.of(), failAfter(5000, null)));

    assertArrayEquals(oldBytes, Files.readAllBytes(file));
  }

  @Test
  void failedWriteLeavesNoTempFile() throws Exception {
    assertThrows(
        IOException.class,
        () -> SafetensorsWriter.write(file, newTensors, Map.of(), failAfter(5000, null)));

    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void failedWriteInHeaderKeepsOldFile() throws Exception {
    assertThrows(
        IOException.class,
        () -> SafetensorsWriter.write(file, newTensors, Map.of(), failAfter(3, null)));

    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void runtimeFailureLeavesNoTempFile() throws Exception {
    var error = new IllegalStateException("simulated failure in the data");

    var thrown =
        assertThrows(
            IllegalStateException.class,
            () -> SafetensorsWriter.write(file, newTensors, Map.of(), failAfter(9000, error)));

    assertEquals(error, thrown);
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void failedFirstWriteCreatesNoFile() throws Exception {
    Path fresh = folder.resolve("fresh.safetensors");

    assertThrows(
        IOException.class,
        () -> SafetensorsWriter.write(fresh, newTensors, Map.of(), failAfter(5000, null)));

    assertFalse(Files.exists(fresh));
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void nullTensorKeepsOldFile() throws Exception {
    newTensors.put("missing", null);

    var e =
        assertThrows(
            IllegalArgumentException.class, () -> Safetensors.write(file, newTensors, Map.of()));

    assertTrue(e.getMessage().contains("tensor \"missing\" is null"), e.getMessage());
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void oldFileIntactDuringWrite() throws Exception {
    List<String> seenDuringWrite = new ArrayList<>();
    List<byte[]> targetDuringWrite = new ArrayList<>();
    UnaryOperator<WritableByteChannel> observe =
        channel -> {
          try {
            seenDuringWrite.addAll(folderContents());
            targetDuringWrite.add(Files.readAllBytes(file));
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
          return channel;
        };

    SafetensorsWriter.write(file, newTensors, Map.of(), observe);

    assertEquals(2, seenDuringWrite.size(), seenDuringWrite.toString());
    assertTrue(
        seenDuringWrite.stream()
            .anyMatch(name -> name.matches("\\.model\\.safetensors\\..+\\.tmp")),
        seenDuringWrite.toString());
    assertArrayEquals(oldBytes, targetDuringWrite.get(0));
    assertEquals(List.of("a", "b"), Safetensors.read(file).names());
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void failedWriteNamesTargetAndCause() throws Exception {
    var e =
        assertThrows(
            FileSystemException.class,
            () -> SafetensorsWriter.write(file, newTensors, Map.of(), failAfter(5000, null)));

    assertEquals(file.toString(), e.getFile());
    assertTrue(e.getReason().contains("(simulated full disk after 5000 bytes)"), e.getReason());
    assertTrue(e.getReason().contains("Free disk space"), e.getReason());
    assertTrue(e.getReason().contains("before is unchanged"), e.getReason());
    assertEquals("simulated full disk after 5000 bytes", e.getCause().getMessage());
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("model.safetensors"), folderContents());

    // The size in the message is the size of the complete file.
    Safetensors.write(file, newTensors, Map.of());
    String size = "writing the " + Files.size(file) + "-byte file failed";
    assertTrue(e.getReason().contains(size), e.getReason());
  }

  @Test
  void failedFirstWriteSaysNoFileCreated() throws Exception {
    Path fresh = folder.resolve("fresh.safetensors");

    var e =
        assertThrows(
            FileSystemException.class,
            () -> SafetensorsWriter.write(fresh, newTensors, Map.of(), failAfter(5000, null)));

    assertTrue(e.getReason().contains("No file was created"), e.getReason());
  }

  @Test
  void missingFolderNamesTargetAndFolder() throws Exception {
    Path target = folder.resolve("runs/new/model.safetensors");

    var e =
        assertThrows(
            NoSuchFileException.class, () -> Safetensors.write(target, newTensors, Map.of()));

    assertEquals(target.toString(), e.getFile());
    assertTrue(
        e.getReason().contains("the folder " + target.getParent() + " does not exist"),
        e.getReason());
    assertTrue(e.getReason().contains("create it first"), e.getReason());
    assertTrue(e.getCause() instanceof NoSuchFileException, String.valueOf(e.getCause()));
    assertEquals(List.of("model.safetensors"), folderContents());
  }

  @Test
  void parentThatIsFileIsNamed() throws Exception {
    // The write fails on the operating system's own check, as a read-only folder would, but this
    // fails for root as well.
    Path plain = Files.writeString(folder.resolve("notes.txt"), "text");
    Path target = plain.resolve("model.safetensors");

    var e =
        assertThrows(
            FileSystemException.class, () -> Safetensors.write(target, newTensors, Map.of()));

    assertEquals(target.toString(), e.getFile());
    assertTrue(e.getReason().contains(plain + " is a file, not a folder"), e.getReason());
    assertEquals("text", Files.readString(plain));
    assertEquals(
        List.of("model.safetensors", "notes.txt"), folderContents().stream().sorted().toList());
  }

  @Test
  void targetThatIsFolderIsRejected() throws Exception {
    Path run = Files.createDirectory(folder.resolve("run"));

    var e =
        assertThrows(FileSystemException.class, () -> Safetensors.write(run, newTensors, Map.of()));

    assertEquals(run.toString(), e.getFile());
    assertTrue(e.getReason().contains("is a folder"), e.getReason());
    assertTrue(Files.isDirectory(run));
    try (Stream<Path> inside = Files.list(run)) {
      assertEquals(0, inside.count());
    }
    assertEquals(List.of("model.safetensors", "run"), folderContents().stream().sorted().toList());
  }

  @Test
  void writeThroughLinkReplacesItsTarget() throws Exception {
    Path link = Files.createSymbolicLink(folder.resolve("latest"), file.getFileName());

    Safetensors.write(link, newTensors, Map.of());

    assertTrue(Files.isSymbolicLink(link));
    assertEquals(file.getFileName(), Files.readSymbolicLink(link));
    assertEquals(List.of("a", "b"), Safetensors.read(file).names());
    assertEquals(List.of("latest", "model.safetensors"), sortedFolderContents());
  }

  @Test
  void noFollowReplacesLinkAndKeepsItsTarget() throws Exception {
    byte[] oldBytes = Files.readAllBytes(file);
    Path link = Files.createSymbolicLink(folder.resolve("latest"), file.getFileName());

    Safetensors.write(link, newTensors, Map.of(), LinkOption.NOFOLLOW_LINKS);

    assertFalse(Files.isSymbolicLink(link), "the link is still there");
    assertEquals(List.of("a", "b"), Safetensors.read(link).names());
    assertArrayEquals(oldBytes, Files.readAllBytes(file), "the file the link led to changed");
  }

  @Test
  void noFollowReplacesLinkToFolder() throws Exception {
    Path elsewhere = Files.createDirectory(folder.resolve("elsewhere"));
    Path link = Files.createSymbolicLink(folder.resolve("latest"), elsewhere);

    Safetensors.write(link, newTensors, Map.of(), LinkOption.NOFOLLOW_LINKS);

    assertFalse(Files.isSymbolicLink(link), "the link is still there");
    assertEquals(List.of("a", "b"), Safetensors.read(link).names());
    try (var entries = Files.list(elsewhere)) {
      assertEquals(0, entries.count(), "something was written into the linked folder");
    }
  }

  @Test
  void writeFollowsChainOfLinks() throws Exception {
    // first -> sub/second -> third (relative to sub, not to the folder of first) -> the absolute
    // path of sub/weights.safetensors.
    Path sub = Files.createDirectory(folder.resolve("sub"));
    Path weights = Files.copy(file, sub.resolve("weights.safetensors"));
    Path third = Files.createSymbolicLink(sub.resolve("third"), weights);
    Path second = Files.createSymbolicLink(sub.resolve("second"), Path.of("third"));
    Path first = Files.createSymbolicLink(folder.resolve("first"), Path.of("sub", "second"));

    Safetensors.write(first, newTensors, Map.of());

    assertEquals(List.of("a", "b"), Safetensors.read(weights).names());
    assertEquals(Path.of("sub", "second"), Files.readSymbolicLink(first));
    assertEquals(Path.of("third"), Files.readSymbolicLink(second));
    assertEquals(weights, Files.readSymbolicLink(third));
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("first", "model.safetensors", "sub"), sortedFolderContents());
    try (Stream<Path> inside = Files.list(sub)) {
      assertEquals(
          List.of("second", "third", "weights.safetensors"),
          inside.map(path -> path.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void failedWriteThroughLinkKeepsTarget() throws Exception {
    Path link = Files.createSymbolicLink(folder.resolve("latest"), file.getFileName());

    var e =
        assertThrows(
            FileSystemException.class,
            () -> SafetensorsWriter.write(link, newTensors, Map.of(), failAfter(5000, null)));

    assertEquals(link.toString(), e.getFile());
    assertEquals(file.toString(), e.getOtherFile());
    assertTrue(e.getReason().contains("before is unchanged"), e.getReason());
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertTrue(Files.isSymbolicLink(link));
    assertEquals(List.of("latest", "model.safetensors"), sortedFolderContents());
  }

  @Test
  void danglingLinkCreatesItsTarget() throws Exception {
    Path link = Files.createSymbolicLink(folder.resolve("latest"), Path.of("fresh.safetensors"));

    Safetensors.write(link, newTensors, Map.of());

    assertTrue(Files.isSymbolicLink(link));
    assertEquals(List.of("a", "b"), Safetensors.read(folder.resolve("fresh.safetensors")).names());
    assertEquals(
        List.of("fresh.safetensors", "latest", "model.safetensors"), sortedFolderContents());
  }

  @Test
  void danglingLinkIntoMissingFolderNamesBoth() throws Exception {
    Path destination = folder.resolve("runs").resolve("fresh.safetensors");
    Path link = Files.createSymbolicLink(folder.resolve("latest"), destination);

    var e =
        assertThrows(
            NoSuchFileException.class, () -> Safetensors.write(link, newTensors, Map.of()));

    assertEquals(link.toString(), e.getFile());
    assertEquals(destination.toString(), e.getOtherFile());
    assertTrue(
        e.getReason().contains("the folder " + destination.getParent() + " does not exist"),
        e.getReason());
    assertTrue(e.getReason().contains("point the symbolic link"), e.getReason());
    assertTrue(Files.isSymbolicLink(link));
    assertEquals(List.of("latest", "model.safetensors"), sortedFolderContents());
  }

  @Test
  void linkLoopIsRejected() throws Exception {
    Path first = folder.resolve("first");
    Path second = folder.resolve("second");
    Files.createSymbolicLink(first, second.getFileName());
    Files.createSymbolicLink(second, first.getFileName());

    var e =
        assertThrows(
            FileSystemException.class, () -> Safetensors.write(first, newTensors, Map.of()));

    assertEquals(first.toString(), e.getFile());
    assertTrue(e.getReason().contains("too many levels of symbolic links"), e.getReason());
    assertArrayEquals(oldBytes, Files.readAllBytes(file));
    assertEquals(List.of("first", "model.safetensors", "second"), sortedFolderContents());
  }

  private List<String> sortedFolderContents() throws IOException {
    return folderContents().stream().sorted().toList();
  }
}
