package dev.kiln.nn.io;

import dev.kiln.core.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.UnaryOperator;

/**
 * Writes safetensors files atomically through a temporary file; see {@link Safetensors#write}.
 *
 * <p>A path that is a symbolic link is written through: the new file replaces the link's final
 * target, and the link stays as it was.
 */
final class SafetensorsWriter {
  /** Bytes per write to the file, a multiple of every element size. */
  private static final int CHUNK_BYTES = 1 << 20;

  private SafetensorsWriter() {}

  /** One tensor to write, with its header fields fixed before any byte is written. */
  private record Item(String name, Tensor tensor, String dtype, int count, int elementSize) {}

  /**
   * Writes {@code tensors} and {@code metadata} to {@code file}.
   *
   * @param wrapChannel decorates the temporary file's channel before any byte is written; tests use
   *     it to make a write fail part-way, and {@link Safetensors#write} passes the identity
   */
  static void write(
      Path file,
      Map<String, Tensor> tensors,
      Map<String, String> metadata,
      UnaryOperator<WritableByteChannel> wrapChannel)
      throws IOException {
    write(file, tensors, metadata, wrapChannel, true);
  }

  /**
   * Writes {@code tensors} and {@code metadata} to {@code file}, through its symbolic links where
   * {@code followLinks}, or replacing a link at {@code file} where not.
   */
  static void write(
      Path file,
      Map<String, Tensor> tensors,
      Map<String, String> metadata,
      UnaryOperator<WritableByteChannel> wrapChannel,
      boolean followLinks)
      throws IOException {
    Objects.requireNonNull(file, "file");
    Objects.requireNonNull(tensors, "tensors");
    Objects.requireNonNull(metadata, "metadata");
    List<Item> items = checkTensors(tensors);
    checkMetadata(metadata);

    byte[] header = encodeHeader(items, metadata);
    Path target = file.toAbsolutePath();
    // Without following links, a link to a folder is a link like any other, which is replaced.
    LinkOption[] linkOptions =
        followLinks ? new LinkOption[0] : new LinkOption[] {LinkOption.NOFOLLOW_LINKS};
    if (Files.isDirectory(target, linkOptions)) {
      throw new FileSystemException(
          target.toString(),
          null,
          "is a folder; pass the path of a file in it, such as "
              + target.resolve("model.safetensors"));
    }
    Path destination = followLinks ? LinkTargets.resolve(target) : target;
    Path temp = createTemp(target, destination);

    try {
      try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE)) {
        WritableByteChannel out = wrapChannel.apply(channel);
        ByteBuffer prefix = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        writeAll(out, prefix.putLong(0, header.length));
        writeAll(out, ByteBuffer.wrap(header));
        for (Item item : items) {
          writeData(out, item);
        }
        channel.force(true);
      } catch (IOException e) {
        throw writeFailure(target, destination, fileSize(header, items), e);
      }
      try {
        moveIntoPlace(temp, destination);
      } catch (IOException e) {
        throw saveFailure(
            target,
            destination,
            "moving the finished temporary file " + temp.getFileName() + " into place failed",
            e,
            "Check that the path is not a folder and that the folder allows renames.");
      }
    } catch (IOException | RuntimeException | Error e) {
      // The old file is untouched until the move, so removing the temporary file is all the
      // cleanup a failure needs.
      try {
        Files.deleteIfExists(temp);
      } catch (IOException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw e;
    }
  }

  /** Returns the size of the file in bytes: the length prefix, the header and the data. */
  private static long fileSize(byte[] header, List<Item> items) {
    long size = Long.BYTES + (long) header.length;
    for (Item item : items) {
      size += (long) item.count() * item.elementSize();
    }
    return size;
  }

  /**
   * Returns the second path for an error about {@code target}: {@code destination} where {@code
   * target} is a symbolic link to it, else null.
   */
  private static String linkedPath(Path target, Path destination) {
    return destination.equals(target) ? null : destination.toString();
  }

  /**
   * Returns the error for a failed write of the temporary file. A full disk and the file size limit
   * ({@code ulimit -f}) are the usual causes.
   */
  private static IOException writeFailure(
      Path target, Path destination, long size, IOException cause) {
    return saveFailure(
        target,
        destination,
        "writing the " + size + "-byte file failed",
        cause,
        "Free disk space or raise the file size limit (ulimit -f), or save to another folder.");
  }

  /**
   * Returns an error that names {@code target} (and {@code destination} where they differ) rather
   * than the temporary file, which is deleted, suggests a fix, and keeps {@code cause}.
   */
  private static IOException saveFailure(
      Path target, Path destination, String step, IOException cause, String advice) {
    String previous =
        Files.exists(destination, LinkOption.NOFOLLOW_LINKS)
            ? " The file that was there before is unchanged."
            : " No file was created.";
    String problem = step + " (" + describe(cause) + "). " + advice + previous;
    FileSystemException error =
        new FileSystemException(target.toString(), linkedPath(target, destination), problem);
    error.initCause(cause);
    return error;
  }

  /** Returns the operating system's error text of {@code error}, or its type where it has none. */
  private static String describe(IOException error) {
    if (error instanceof FileSystemException fileError) {
      return fileError.getReason() != null
          ? fileError.getReason()
          : error.getClass().getSimpleName();
    }
    return error.getMessage() != null ? error.getMessage() : error.getClass().getSimpleName();
  }

  private static List<Item> checkTensors(Map<String, Tensor> tensors) {
    List<Item> items = new ArrayList<>(tensors.size());
    for (Map.Entry<String, Tensor> entry : tensors.entrySet()) {
      String name = entry.getKey();
      checkText(name, "tensor name");
      if (name.equals(SafetensorsHeader.METADATA_KEY)) {
        throw new IllegalArgumentException(
            "tensor name \"" + name + "\" is reserved for the header's metadata; rename it");
      }

      Tensor tensor = entry.getValue();
      if (tensor == null) {
        throw new IllegalArgumentException("tensor \"" + name + "\" is null");
      }
      String dtype =
          switch (tensor.dtype()) {
            case FLOAT32 -> "F32";
            case FLOAT64 -> "F64";
            default ->
                throw new IllegalArgumentException(
                    "tensor \""
                        + name
                        + "\" has dtype "
                        + tensor.dtype()
                        + "; safetensors writing supports float32 and float64");
          };
      int[] shape = tensor.shape();
      long shapeCount = 1;
      for (int size : shape) {
        shapeCount *= size;
      }
      if (shapeCount != tensor.numel()) {
        throw new IllegalArgumentException(
            "tensor \""
                + name
                + "\" has shape "
                + Arrays.toString(shape)
                + " but "
                + tensor.numel()
                + " elements in storage; it may have been closed");
      }
      items.add(new Item(name, tensor, dtype, tensor.numel(), tensor.dtype().byteSize()));
    }
    return items;
  }

  private static void checkMetadata(Map<String, String> metadata) {
    for (Map.Entry<String, String> entry : metadata.entrySet()) {
      checkText(entry.getKey(), "metadata key");
      checkText(entry.getValue(), "metadata value of \"" + entry.getKey() + "\"");
    }
  }

  /** Rejects null and text that UTF-8 cannot encode (an unpaired surrogate). */
  private static void checkText(String text, String label) {
    if (text == null) {
      throw new IllegalArgumentException(label + " is null");
    }
    try {
      StandardCharsets.UTF_8
          .newEncoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .encode(CharBuffer.wrap(text));
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(
          label + " \"" + text + "\" contains an unpaired surrogate, which UTF-8 cannot encode", e);
    }
  }

  /** Returns the header JSON in UTF-8, padded with spaces to a multiple of 8 bytes. */
  private static byte[] encodeHeader(List<Item> items, Map<String, String> metadata) {
    Map<String, Object> root = new LinkedHashMap<>();
    if (!metadata.isEmpty()) {
      root.put(SafetensorsHeader.METADATA_KEY, new LinkedHashMap<>(metadata));
    }

    long offset = 0;
    for (Item item : items) {
      long end = offset + (long) item.count() * item.elementSize();
      List<Long> shape = new ArrayList<>();
      for (int size : item.tensor().shape()) {
        shape.add((long) size);
      }
      Map<String, Object> fields = new LinkedHashMap<>();
      fields.put("dtype", item.dtype());
      fields.put("shape", shape);
      fields.put("data_offsets", List.of(offset, end));
      root.put(item.name(), fields);
      offset = end;
    }

    byte[] json = JsonWriter.write(root).getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) / 8 * 8;
    if (padded > SafetensorsHeader.MAX_HEADER_BYTES) {
      throw new IllegalArgumentException(
          "header would be "
              + padded
              + " bytes, more than readers accept ("
              + SafetensorsHeader.MAX_HEADER_BYTES
              + "); shorten the names or metadata, or split the tensors over several files");
    }
    byte[] header = new byte[padded];
    System.arraycopy(json, 0, header, 0, json.length);
    for (int i = json.length; i < padded; i++) {
      header[i] = ' ';
    }
    return header;
  }

  /**
   * Creates an empty temporary file next to {@code destination}, so that the final move is a
   * rename. Errors name {@code target}, the path the caller passed.
   */
  private static Path createTemp(Path target, Path destination) throws IOException {
    Path folder = destination.getParent();
    String base = destination.getFileName().toString();
    // Keeps the temporary name within the 255-byte file name limit of common file systems.
    if (base.length() > 100) {
      base = base.substring(0, 100);
    }

    while (true) {
      String suffix = Long.toHexString(ThreadLocalRandom.current().nextLong());
      Path temp = folder.resolve("." + base + "." + suffix + ".tmp");
      try {
        FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
        return temp;
      } catch (FileAlreadyExistsException taken) {
        // Another writer drew the same random name; draw again.
      } catch (IOException e) {
        throw createFailure(target, destination, e);
      }
    }
  }

  /**
   * Returns the error for a temporary file that could not be created next to {@code destination}.
   * The JDK's error names only the temporary file, so this one names the target, the link's
   * destination where it has one, and the folder, suggests a fix, and keeps the JDK's error as the
   * cause.
   */
  private static IOException createFailure(Path target, Path destination, IOException cause) {
    Path folder = destination.getParent();
    String other = linkedPath(target, destination);
    Path existing = folder;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }

    FileSystemException error;
    if (existing != null && !Files.isDirectory(existing)) {
      error =
          new FileSystemException(
              target.toString(),
              other,
              existing
                  + " is a file, not a folder, so nothing can be saved under it; pick another"
                  + " path");
    } else if (!folder.equals(existing)) {
      error =
          new NoSuchFileException(
              target.toString(),
              other,
              "the folder "
                  + folder
                  + " does not exist; create it first (mkdir -p, or Files.createDirectories)"
                  + (other == null ? "" : ", or point the symbolic link at an existing folder"));
    } else if (cause instanceof AccessDeniedException) {
      error =
          new AccessDeniedException(
              target.toString(),
              other,
              "no permission to create a file in "
                  + folder
                  + "; save to a folder you can write to, or change its permissions");
    } else {
      error =
          new FileSystemException(
              target.toString(),
              other,
              "cannot create a temporary file in " + folder + " (" + describe(cause) + ")");
    }
    error.initCause(cause);
    return error;
  }

  private static void moveIntoPlace(Path temp, Path target) throws IOException {
    // NOTE: the folder is not synced after the rename, so a power loss right after this call may
    // bring the old file back. An atomic rename leaves the old or the new file, never a partial
    // one,
    // but the REPLACE_EXISTING fallback gives no such promise.
    try {
      Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  private static void writeData(WritableByteChannel out, Item item) throws IOException {
    int count = item.tensor().numel();
    if (count != item.count()) {
      throw new IllegalStateException(
          "tensor \"" + item.name() + "\" changed size while it was written; write it again");
    }
    if (count == 0) {
      return;
    }

    int perChunk = CHUNK_BYTES / item.elementSize();
    ByteBuffer buffer =
        ByteBuffer.allocate(Math.min(count, perChunk) * item.elementSize())
            .order(ByteOrder.LITTLE_ENDIAN);
    // The backing arrays give the exact bit patterns, NaN payloads included. A backing array of
    // another length than the tensor is not its plain row-major data, so the values are copied out.
    // A tensor on a device other than the CPU (float32 only) is downloaded whole, which also keeps
    // the bit patterns.
    float[] floats = null;
    double[] doubles = null;
    if (!item.tensor().device().isCpu()) {
      floats = item.tensor().toFloatArray();
    } else if (item.dtype().equals("F32")) {
      floats = item.tensor().storage().floats();
      floats = floats.length == count ? floats : item.tensor().toFloatArray();
    } else {
      doubles = item.tensor().storage().doubles();
      doubles = doubles.length == count ? doubles : item.tensor().toDoubleArray();
    }

    for (int done = 0; done < count; ) {
      int n = Math.min(count - done, perChunk);
      buffer.clear();
      if (floats != null) {
        buffer.asFloatBuffer().put(floats, done, n);
      } else {
        buffer.asDoubleBuffer().put(doubles, done, n);
      }
      buffer.limit(n * item.elementSize());
      writeAll(out, buffer);
      done += n;
    }
  }

  private static void writeAll(WritableByteChannel out, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      out.write(buffer);
    }
  }
}
