package dev.kiln.nn.io;

import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * A safetensors file whose header has been read and validated. Tensors are read on request.
 *
 * <p>Reading is lazy: {@link Safetensors#read} reads only the header, and each {@link #tensor} call
 * opens the file, reads that tensor's byte range in chunks of at most 1 MiB through a {@link
 * FileChannel}, and closes the file again. No file handle is held between calls, so there is
 * nothing to close. Before each read the file's identity (the file key, an inode on Linux), its
 * last-modified time, size and header bytes are compared with those seen at open. A file replaced
 * since then by a rename, as {@link Safetensors#write} does, is reported rather than read. So is a
 * rewrite in place, unless it keeps the size and header and lands within the same tick of the file
 * system's clock, which can be a few milliseconds long. Instances are immutable and safe to share
 * between threads.
 *
 * <p>{@link #readAll} instead reads the header and the tensors through one open channel. A rename
 * over the path while it reads then does not matter, because the channel still reads the file that
 * it opened, so a service can load a checkpoint that a training run replaces at the same moment. A
 * rewrite in place (by {@code cp} or {@code rsync --inplace}) while either method reads is another
 * matter: it is reported only where it changes the size, the header or the last-modified time, and
 * that time moves in ticks of the file system's clock. Such a rewrite can otherwise give tensors of
 * both versions, or floats made of bytes from both, so replace files by a rename.
 */
public final class SafetensorsFile {
  /** Bytes per read from the file, a multiple of every element size. */
  private static final int CHUNK_BYTES = 1 << 20;

  private final Path file;
  private final Identity identity;
  private final byte[] headerBytes;
  private final SafetensorsHeader header;

  private SafetensorsFile(
      Path file, Identity identity, byte[] headerBytes, SafetensorsHeader header) {
    this.file = file;
    this.identity = identity;
    this.headerBytes = headerBytes;
    this.header = header;
  }

  /**
   * The attributes that tell one version of a file from another.
   *
   * @param key the file system's key for the file (device and inode on Linux), or null where the
   *     file system has none
   */
  private record Identity(Object key, FileTime lastModified, long size) {
    static Identity of(Path file) throws IOException {
      BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
      return new Identity(attributes.fileKey(), attributes.lastModifiedTime(), attributes.size());
    }
  }

  /** The length prefix and header of a file, and its size, as read through one channel. */
  private record Parsed(long size, byte[] headerBytes, SafetensorsHeader header) {}

  /** Reads and validates the length prefix and header of {@code file}. */
  static SafetensorsFile open(Path file) throws IOException {
    requireRegularFile(file);
    // The identity is taken before the channel opens and compared again after the header is read,
    // so a file replaced in between is reported instead of pairing one file's header with
    // another's identity.
    try {
      Identity identity = Identity.of(file);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
        Parsed parsed = readHeader(file, channel);
        if (parsed.size() != identity.size() || !Identity.of(file).equals(identity)) {
          throw new SafetensorsException(
              file, "file changed while Safetensors.read opened it; call Safetensors.read again");
        }
        return new SafetensorsFile(file, identity, parsed.headerBytes(), parsed.header());
      }
    } catch (NoSuchFileException e) {
      throw notFound(file, e);
    }
  }

  /**
   * Reads the header and the tensors that {@code include} accepts, in header order, through one
   * channel. If the path is replaced between the two looks at its identity around the opening, the
   * opening is tried again, for at most three attempts in all.
   */
  static Safetensors.Contents readAll(Path file, Predicate<String> include) throws IOException {
    requireRegularFile(file);
    try {
      return readAllOnce(file, include);
    } catch (NoSuchFileException e) {
      throw notFound(file, e);
    }
  }

  private static Safetensors.Contents readAllOnce(Path file, Predicate<String> include)
      throws IOException {
    for (int attempt = 1; ; attempt++) {
      Identity before = Identity.of(file);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
        Identity opened = Identity.of(file);
        if (!opened.equals(before)) {
          if (attempt < 3) {
            continue;
          }
          throw new SafetensorsException(
              file, "file changed three times while it was being opened; read it again");
        }
        Parsed parsed = readHeader(file, channel);
        SafetensorsFile contents =
            new SafetensorsFile(file, opened, parsed.headerBytes(), parsed.header());
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (String name : contents.names()) {
          if (include.test(name)) {
            tensors.put(name, contents.read(channel, name));
          }
        }
        contents.checkNotRewritten(channel);
        return new Safetensors.Contents(contents.names(), tensors, contents.metadata());
      }
    }
  }

  /**
   * Rejects a folder, a FIFO, a socket or a device before it is opened: opening a FIFO blocks until
   * another process writes to it, and the other errors would name no file. The attributes are read
   * once, so a file that is missing, behind a loop of links or in a folder without permission gets
   * the operating system's own reason.
   *
   * <p>NOTE: a FIFO that replaces the path between this check and the opening still blocks the
   * opening, because Java cannot open a file without blocking.
   */
  private static void requireRegularFile(Path file) throws IOException {
    BasicFileAttributes attributes;
    try {
      attributes = Files.readAttributes(file, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      throw notFound(file, e);
    }
    if (attributes.isDirectory()) {
      throw new SafetensorsException(
          file, "is a folder, not a safetensors file; pass a file such as best.safetensors");
    }
    if (!attributes.isRegularFile()) {
      throw new SafetensorsException(
          file,
          "is not a regular file (a FIFO, socket or device); pass a safetensors file such as"
              + " best.safetensors");
    }
  }

  /**
   * Returns the error for a missing file. A file that a writer replaces by deleting it and writing
   * it anew is missing for a moment, so any step of a read may meet this, not only the first.
   */
  private static NoSuchFileException notFound(Path file, NoSuchFileException cause) {
    NoSuchFileException error =
        new NoSuchFileException(file.toString(), null, "safetensors file not found");
    error.initCause(cause);
    return error;
  }

  /** Reads and validates the length prefix and header through {@code channel}. */
  private static Parsed readHeader(Path file, FileChannel channel) throws IOException {
    long size = channel.size();
    if (size < Long.BYTES) {
      throw new SafetensorsException(
          file,
          "file has "
              + size
              + " bytes, fewer than the 8-byte header length; it is truncated or not a"
              + " safetensors file");
    }

    long headerLength = readFully(file, channel, 0, Long.BYTES).getLong();
    long available = size - Long.BYTES;
    // The length is an unsigned 64-bit number, so a negative long is above 2^63.
    if (headerLength < 0 || headerLength > SafetensorsHeader.MAX_HEADER_BYTES) {
      throw new SafetensorsException(
          file,
          "header length "
              + Long.toUnsignedString(headerLength)
              + " bytes exceeds the limit of "
              + SafetensorsHeader.MAX_HEADER_BYTES
              + " bytes; the file is corrupt or not a safetensors file");
    }
    if (headerLength > available) {
      throw new SafetensorsException(
          file,
          "header length "
              + headerLength
              + " bytes is larger than the "
              + available
              + " bytes that follow it; the file is truncated or not a safetensors file");
    }

    byte[] headerBytes = new byte[(int) headerLength];
    readFully(file, channel, Long.BYTES, (int) headerLength).get(headerBytes);
    SafetensorsHeader header = SafetensorsHeader.parse(file, headerBytes, available - headerLength);
    return new Parsed(size, headerBytes, header);
  }

  /** Returns the path this file was read from. */
  public Path file() {
    return file;
  }

  /** Returns the tensor names in the order of the header. */
  public List<String> names() {
    return List.copyOf(header.entries().keySet());
  }

  /** Returns whether the file contains a tensor named {@code name}. */
  public boolean contains(String name) {
    return header.entries().containsKey(name);
  }

  /** Returns the shape of tensor {@code name} without reading its data. */
  public int[] shape(String name) throws SafetensorsException {
    return entry(name).shape().clone();
  }

  /** Returns the header's {@code __metadata__} strings in file order, or an empty map. */
  public Map<String, String> metadata() {
    return header.metadata();
  }

  /**
   * Reads tensor {@code name} from the file into a new tensor: float64 for F64 data, float32 for
   * F32, F16 and BF16 data. F16 and BF16 values widen to float32 exactly.
   *
   * @throws SafetensorsException if the file has no such tensor, stores it in a dtype kiln does not
   *     read, or changed since it was opened
   * @throws IOException if reading the file fails
   */
  public Tensor tensor(String name) throws IOException {
    elementCount(name, entry(name));
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      checkUnchanged(channel);
      return read(channel, name);
    } catch (NoSuchFileException e) {
      throw notFound(file, e);
    }
  }

  /**
   * Returns the number of elements of tensor {@code name}, after checking that kiln reads its dtype
   * and that it fits a kiln tensor.
   */
  private int elementCount(String name, SafetensorsHeader.Entry entry) throws SafetensorsException {
    SafetensorsDType dtype = entry.dtype();
    if (!dtype.readable()) {
      throw new SafetensorsException(
          file,
          "tensor \""
              + name
              + "\" has dtype "
              + dtype
              + ", which kiln does not read; kiln reads "
              + SafetensorsDType.READABLE
              + ". Convert the tensor before saving it.");
    }
    long count = entry.byteLength() / dtype.byteSize();
    if (count > Integer.MAX_VALUE) {
      throw new SafetensorsException(
          file,
          "tensor \""
              + name
              + "\" has "
              + count
              + " elements, more than the "
              + Integer.MAX_VALUE
              + " a kiln tensor can hold; split it before saving");
    }
    return (int) count;
  }

  /** Reads tensor {@code name} through {@code channel}, after the checks of {@link #tensor}. */
  private Tensor read(FileChannel channel, String name) throws IOException {
    SafetensorsHeader.Entry entry = entry(name);
    SafetensorsDType dtype = entry.dtype();
    int count = elementCount(name, entry);
    long position = Long.BYTES + (long) headerBytes.length + entry.begin();
    Storage storage = readStorage(channel, position, dtype, count);
    return new Tensor(storage, entry.shape(), Device.CPU);
  }

  private Storage readStorage(FileChannel channel, long position, SafetensorsDType dtype, int count)
      throws IOException {
    int elementSize = dtype.byteSize();
    double[] doubles = dtype == SafetensorsDType.F64 ? new double[count] : null;
    float[] floats = doubles == null ? new float[count] : null;

    int done = 0;
    while (done < count) {
      int n = Math.min(count - done, CHUNK_BYTES / elementSize);
      ByteBuffer chunk =
          readFully(file, channel, position + (long) done * elementSize, n * elementSize);
      switch (dtype) {
        case F64 -> chunk.asDoubleBuffer().get(doubles, done, n);
        case F32 -> chunk.asFloatBuffer().get(floats, done, n);
        case F16 -> {
          for (int i = 0; i < n; i++) {
            floats[done + i] = Float.float16ToFloat(chunk.getShort());
          }
        }
        case BF16 -> {
          // BF16 is the upper half of a float32 bit pattern.
          for (int i = 0; i < n; i++) {
            floats[done + i] = Float.intBitsToFloat((chunk.getShort() & 0xFFFF) << 16);
          }
        }
        default -> throw new IllegalStateException("dtype " + dtype + " is not readable");
      }
      done += n;
    }

    return doubles != null ? Storage.wrap(doubles) : Storage.wrap(floats);
  }

  /**
   * Fails if the file's key, last-modified time, size or header bytes differ from those read at
   * open. The key and time are read from the path after {@code channel} opened it, so a replacement
   * in between is reported too.
   */
  private void checkUnchanged(FileChannel channel) throws IOException {
    boolean same = channel.size() == identity.size() && Identity.of(file).equals(identity);
    if (same) {
      ByteBuffer current = readFully(file, channel, Long.BYTES, headerBytes.length);
      same = current.equals(ByteBuffer.wrap(headerBytes));
    }
    if (!same) {
      throw new SafetensorsException(
          file,
          "file changed since Safetensors.read opened it; call Safetensors.read again to read the"
              + " new contents");
    }
  }

  /**
   * Fails if the file that {@code channel} reads was rewritten in place since it was opened: its
   * size or header bytes differ, or the path still names it and its last-modified time moved. A
   * file renamed over the path since then does not matter, because the channel still reads the old
   * one.
   */
  private void checkNotRewritten(FileChannel channel) throws IOException {
    boolean same = channel.size() == identity.size();
    if (same) {
      ByteBuffer current = readFully(file, channel, Long.BYTES, headerBytes.length);
      same = current.equals(ByteBuffer.wrap(headerBytes));
    }
    if (same) {
      Identity now;
      try {
        now = Identity.of(file);
      } catch (NoSuchFileException deleted) {
        now = null;
      }
      if (now != null && Objects.equals(now.key(), identity.key()) && !now.equals(identity)) {
        same = false;
      }
    }
    if (!same) {
      throw new SafetensorsException(file, "file changed while it was being read; read it again");
    }
  }

  private SafetensorsHeader.Entry entry(String name) throws SafetensorsException {
    SafetensorsHeader.Entry entry = header.entries().get(name);
    if (entry == null) {
      List<String> names = names();
      String examples = String.join(", ", names.subList(0, Math.min(5, names.size())));
      throw new SafetensorsException(
          file,
          "no tensor named \""
              + name
              + "\"; the file has "
              + names.size()
              + " tensors"
              + (names.isEmpty() ? "" : ", e.g. " + examples)
              + ". Call names() for the full list.");
    }
    return entry;
  }

  /** Reads exactly {@code length} bytes at {@code position}, as a little-endian buffer. */
  private static ByteBuffer readFully(Path file, FileChannel channel, long position, int length)
      throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
    while (buffer.hasRemaining()) {
      int read = channel.read(buffer, position + buffer.position());
      if (read < 0) {
        throw new EOFException(
            file + ": file ended at byte " + (position + buffer.position()) + " during a read");
      }
    }
    return buffer.flip();
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + file + ", " + header.entries().size() + " tensors]";
  }
}
