package dev.kiln.nn.io;

import dev.kiln.core.tensor.Tensor;
import java.io.IOException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * Reads and writes tensors in the safetensors format.
 *
 * <p>A file is an 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON, then
 * the data section. The JSON maps each tensor name to its {@code dtype}, {@code shape} and {@code
 * data_offsets} [begin, end), in bytes from the start of the data section, and may hold a {@code
 * __metadata__} object of string values. Data is little-endian and row-major.
 *
 * <p>Kiln reads F32 and F64 tensors as float32 and float64, and widens F16 and BF16 to float32
 * exactly. It writes float32 as F32 and float64 as F64. Every header is validated when the file is
 * opened, and problems are reported as {@link SafetensorsException}.
 *
 * <pre>{@code
 * Safetensors.write(path, Map.of("weight", w), Map.of("epoch", "3"));
 * SafetensorsFile file = Safetensors.read(path);
 * Tensor weight = file.tensor("weight");
 * }</pre>
 */
public final class Safetensors {
  private Safetensors() {}

  /**
   * Reads and validates the header of {@code file}. Tensor data is read later, by {@link
   * SafetensorsFile#tensor}.
   *
   * @throws SafetensorsException if the file is not a valid safetensors file
   * @throws IOException if the file cannot be read
   */
  public static SafetensorsFile read(Path file) throws IOException {
    return SafetensorsFile.open(file);
  }

  /**
   * The contents of a safetensors file as {@link #readAll} returns them.
   *
   * @param names every tensor name in the header, in header order, also those not read
   * @param tensors the tensors that were read, by name, in header order
   * @param metadata the header's {@code __metadata__} strings in file order, or an empty map
   */
  public record Contents(
      List<String> names, Map<String, Tensor> tensors, Map<String, String> metadata) {
    /** Copies the collections, which callers may not change. */
    public Contents {
      names = List.copyOf(names);
      tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
      metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }
  }

  /**
   * Reads the header of {@code file} and the tensors whose names {@code include} accepts, in one
   * pass through one open file. Tensors are decoded as {@link SafetensorsFile#tensor} decodes them.
   *
   * <p>Where {@link #read} opens the file again for each tensor and reports a file replaced in
   * between, this method reads everything from the file it opened. A file that a writer replaces by
   * a rename meanwhile, as {@link #write} does, is therefore read whole in its old version. A
   * rewrite in place while it reads is reported where it changes the size, the header or the
   * last-modified time, but one within a tick of the file system's clock that keeps the size and
   * header can give tensors of both versions (see {@link SafetensorsFile}).
   *
   * @throws java.nio.file.NoSuchFileException if the file does not exist
   * @throws SafetensorsException if the file is a folder, a FIFO or a device, is not a valid
   *     safetensors file, stores an included tensor in a dtype kiln does not read, or was rewritten
   *     in place while it was read
   * @throws IOException if the file cannot be read
   */
  public static Contents readAll(Path file, Predicate<String> include) throws IOException {
    return SafetensorsFile.readAll(file, include);
  }

  /** Reads every tensor of {@code file}, as {@link #readAll(Path, Predicate)} describes. */
  public static Contents readAll(Path file) throws IOException {
    return readAll(file, name -> true);
  }

  /**
   * Writes {@code tensors} to {@code file}, with their data laid out in the map's iteration order,
   * and {@code metadata} as the header's {@code __metadata__}, omitted when empty. The header is
   * padded with spaces to a multiple of 8 bytes.
   *
   * <p>The write is atomic: the bytes go to a temporary file in the same folder, which is forced to
   * disk and then renamed over {@code file}. Where the file system cannot rename atomically, the
   * temporary file replaces {@code file} by an ordinary move. A failure at any step deletes the
   * temporary file and leaves an existing {@code file} as it was.
   *
   * <p>If {@code file} is a symbolic link, the write goes through it, as opening the path for
   * writing would: the file that its chain of links ends at is replaced, atomically as above, and
   * the link stays. A dangling link creates that file, provided its folder exists. With {@link
   * LinkOption#NOFOLLOW_LINKS}, the link itself is replaced instead, and the file it led to is left
   * as it was, which suits a program that writes into a folder it was given and must change nothing
   * outside it.
   *
   * @throws IllegalArgumentException if a name or value is null, a tensor is named {@code
   *     __metadata__}, a string contains an unpaired surrogate, or a tensor is neither float32 nor
   *     float64
   * @throws IOException if {@code file} is a folder, its folder (for a link, the folder of the file
   *     the link leads to) does not exist, its links form a loop, or writing or moving the file
   *     fails (a full disk, the file size limit). The error is a {@link
   *     java.nio.file.FileSystemException} that names {@code file}, and for a link also the file it
   *     leads to, suggests a fix, and has the operating system's error, where there is one, as its
   *     cause.
   */
  public static void write(
      Path file, Map<String, Tensor> tensors, Map<String, String> metadata, LinkOption... options)
      throws IOException {
    boolean followLinks = !Arrays.asList(options).contains(LinkOption.NOFOLLOW_LINKS);
    SafetensorsWriter.write(file, tensors, metadata, UnaryOperator.identity(), followLinks);
  }
}
