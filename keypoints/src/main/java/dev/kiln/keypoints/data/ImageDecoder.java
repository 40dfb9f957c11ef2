package dev.kiln.keypoints.data;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes PNG and JPEG files into {@link GrayImage}s, choosing the format by the file's first bytes
 * and never by its name, because the published face dataset stores PNG files named {@code .jpg}.
 *
 * <p>Accepted: PNG in every color type and bit depth (gray, gray + alpha, RGB, RGBA, palette, 1 to
 * 16 bits) and JPEG with 1 (gray), 3 (YCbCr or RGB) or 4 (CMYK or YCCK) components. Color becomes
 * gray through ITU-R BT.601 luma, {@code 0.299 R + 0.587 G + 0.114 B} computed on the stored
 * samples without gamma or ICC conversion and without rounding to 8 bits. Alpha is ignored. Samples
 * are divided by their maximum ({@code 255}, or {@code 65535} for 16-bit PNG) so pixels lie in [0,
 * 1].
 *
 * <p>Images larger than {@link GrayImage#MAX_PIXELS} or with sides further apart than {@link
 * GrayImage#MAX_ASPECT_RATIO} are rejected from the size in their header, before any pixel memory
 * is allocated, so a small file that declares a huge image fails at once instead of exhausting the
 * heap. Files larger than {@link #MAX_FILE_BYTES} are rejected before they are read, and a file is
 * read in full only after its first bytes show a PNG or JPEG signature.
 *
 * <p>Every failure is an {@link IOException} whose message names the file, the problem and the fix.
 * A missing file raises {@link NoSuchFileException}. Truncated data fails instead of decoding part
 * of an image: the PNG chunk structure and CRCs are checked before decoding, and any warning from
 * the JPEG decoder (libjpeg reports a premature end of data only as a warning) is turned into an
 * error.
 *
 * <p>The class is stateless and safe to call from several threads.
 */
public final class ImageDecoder {

  private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

  /**
   * Largest file the decoder reads into memory, 1 GiB. An image within {@link GrayImage#MAX_PIXELS}
   * stored without compression at 8 bytes a pixel (16-bit RGBA) takes 800 MB, so every image that
   * could pass the pixel limit fits.
   */
  public static final long MAX_FILE_BYTES = 1L << 30;

  /** Number of first bytes read to recognize the format before the rest of the file is read. */
  private static final int HEAD_BYTES = 512;

  private ImageDecoder() {}

  /**
   * Decodes {@code file} into a gray image.
   *
   * @throws NoSuchFileException if the file does not exist
   * @throws IOException if the file is a folder or another non-regular file (such as a FIFO),
   *     empty, larger than {@link #MAX_FILE_BYTES}, not a PNG or JPEG, truncated, corrupt, in a
   *     color model this decoder does not support, or declares an image size outside {@link
   *     GrayImage#isWithinLimits}
   */
  public static GrayImage decode(Path file) throws IOException {
    byte[] head = readHead(file);
    String source = file.toString();
    requireImageSignature(source, head);
    return decodeChecked(source, readAll(file));
  }

  /**
   * Decodes the bytes of a PNG or JPEG file, such as an upload that a service received, into a gray
   * image, with the checks and limits of {@link #decode(Path)}.
   *
   * @param source the name that error messages start with, such as the upload's file name
   * @throws IOException if the bytes are empty, more than {@link #MAX_FILE_BYTES}, not a PNG or
   *     JPEG, truncated, corrupt, in a color model this decoder does not support, or declare an
   *     image size outside {@link GrayImage#isWithinLimits}
   */
  public static GrayImage decode(byte[] bytes, String source) throws IOException {
    Objects.requireNonNull(bytes, "bytes must not be null");
    Objects.requireNonNull(source, "source must not be null");
    if (bytes.length == 0) {
      throw new IOException(
          source + ": no bytes (0 bytes), so the upload or copy probably failed; send it again");
    }
    if (bytes.length > MAX_FILE_BYTES) {
      throw new IOException(
          source
              + ": "
              + bytes.length
              + " bytes, more than the "
              + MAX_FILE_BYTES
              + " bytes (1 GiB) that the decoder takes; crop the face out of the image or"
              + " downscale it");
    }
    requireImageSignature(source, Arrays.copyOf(bytes, Math.min(bytes.length, HEAD_BYTES)));
    return decodeChecked(source, bytes);
  }

  /** Rejects {@code head}, a file's first bytes, unless it starts as a PNG or JPEG file does. */
  private static void requireImageSignature(String source, byte[] head) throws IOException {
    if (!isPng(head) && !isJpeg(head)) {
      throw new IOException(
          source
              + ": not a PNG or JPEG file ("
              + FileSignatures.describe(head)
              + "); convert it to PNG or JPEG, or leave it out");
    }
  }

  private static boolean isPng(byte[] bytes) {
    return startsWith(bytes, PNG_SIGNATURE);
  }

  private static boolean isJpeg(byte[] bytes) {
    return bytes.length >= 3
        && (bytes[0] & 0xff) == 0xff
        && (bytes[1] & 0xff) == 0xd8
        && (bytes[2] & 0xff) == 0xff;
  }

  /** Decodes {@code bytes}, whose signature {@link #requireImageSignature} has accepted. */
  private static GrayImage decodeChecked(String source, byte[] bytes) throws IOException {
    if (isPng(bytes)) {
      PngChunks.check(source, bytes);
      return GrayConversion.fromBufferedImage(source, readImage(source, bytes, "png"));
    }
    return decodeJpeg(source, bytes);
  }

  private static GrayImage decodeJpeg(String source, byte[] bytes) throws IOException {
    JpegHeader header = JpegHeader.parse(source, bytes);

    switch (header.components()) {
      case 1, 3 -> {
        return GrayConversion.fromBufferedImage(source, readImage(source, bytes, "jpeg"));
      }
      case 4 -> {
        // ImageIO rejects 4-component JPEGs in read(), but readRaster() returns the decoded
        // samples without any color conversion, which GrayConversion then interprets.
        Raster raster = readRaster(source, bytes);
        return GrayConversion.fromCmykRaster(raster, header.hasAdobeMarker(), header.isYcck());
      }
      default ->
          throw new IOException(
              source
                  + ": unsupported JPEG with "
                  + header.components()
                  + " color components (expected 1, 3 or 4); convert it to an RGB or gray JPEG");
    }
  }

  /**
   * Checks that {@code file} is a regular file within {@link #MAX_FILE_BYTES} and returns its first
   * {@link #HEAD_BYTES} bytes, enough for the format signatures and for {@link
   * FileSignatures#describe}, so that a large file that is no image is rejected without reading it.
   */
  private static byte[] readHead(Path file) throws IOException {
    if (Files.isDirectory(file)) {
      throw new IOException(file + ": is a directory, not an image file; pass an image file");
    }
    if (Files.exists(file) && !Files.isRegularFile(file)) {
      // Opening a FIFO would wait for a writer, and a device may never end.
      throw new IOException(
          file + ": is not a regular file (a FIFO, socket or device); pass an image file");
    }

    byte[] head;
    try {
      long size = Files.size(file);
      if (size > MAX_FILE_BYTES) {
        throw new IOException(
            file
                + ": file is "
                + size
                + " bytes, more than the "
                + MAX_FILE_BYTES
                + " bytes (1 GiB) that the decoder reads; crop the face out of the image or"
                + " downscale it");
      }
      try (InputStream input = Files.newInputStream(file)) {
        head = input.readNBytes(HEAD_BYTES);
      }
    } catch (NoSuchFileException e) {
      throw notFound(file);
    } catch (AccessDeniedException e) {
      throw new IOException(file + ": permission denied; make the file readable", e);
    }

    if (head.length == 0) {
      throw new IOException(
          file
              + ": file is empty (0 bytes), so a copy or upload probably failed; copy the image again");
    }
    return head;
  }

  /** Reads the whole of {@code file}, which {@link #readHead} has checked. */
  private static byte[] readAll(Path file) throws IOException {
    try {
      return Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw notFound(file);
    } catch (AccessDeniedException e) {
      throw new IOException(file + ": permission denied; make the file readable", e);
    }
  }

  private static NoSuchFileException notFound(Path file) {
    return new NoSuchFileException(
        file.toString(), null, "image file not found; check the path and the image folder");
  }

  private static BufferedImage readImage(String source, byte[] bytes, String format)
      throws IOException {
    return readChecked(source, bytes, format, reader -> reader.read(0));
  }

  private static Raster readRaster(String source, byte[] bytes) throws IOException {
    return readChecked(source, bytes, "jpeg", reader -> reader.readRaster(0, null));
  }

  /**
   * Reads the image size from the header, rejects sizes outside {@link GrayImage#isWithinLimits}
   * before any pixel buffer is allocated, and only then decodes with {@code decode}.
   */
  private static <T> T readChecked(String source, byte[] bytes, String format, Decoding<T> decode)
      throws IOException {
    ImageReader reader = newReader(source, format);
    WarningCollector warnings = new WarningCollector();
    reader.addIIOReadWarningListener(warnings);

    T result;
    try (ImageInputStream input =
        new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))) {
      reader.setInput(input, true, true);
      requireWithinLimits(source, reader, format);
      try {
        result = decode.apply(reader);
      } catch (IOException | RuntimeException e) {
        // ImageIO signals corrupt data with IIOException but also with unchecked exceptions
        // (for example IllegalArgumentException or ArrayIndexOutOfBoundsException).
        throw corrupt(source, format, e);
      }
    } finally {
      reader.dispose();
    }

    warnings.throwIfAny(source, format);
    return result;
  }

  private static void requireWithinLimits(String source, ImageReader reader, String format)
      throws IOException {
    int width;
    int height;
    try {
      width = reader.getWidth(0);
      height = reader.getHeight(0);
    } catch (IOException | RuntimeException e) {
      throw corrupt(source, format, e);
    }
    if (!GrayImage.isWithinLimits(width, height)) {
      throw new IOException(source + ": " + GrayImage.describeLimitViolation(width, height));
    }
  }

  private static ImageReader newReader(String source, String format) throws IOException {
    Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format);
    if (!readers.hasNext()) {
      throw new IOException(
          source + ": this JDK has no ImageIO reader for " + format + "; use a full JDK");
    }
    return readers.next();
  }

  private static IOException corrupt(String source, String format, Exception cause) {
    return new IOException(
        source
            + ": corrupt or truncated "
            + format.toUpperCase(Locale.ROOT)
            + " data ("
            + cause
            + "); replace the file with an intact copy",
        cause);
  }

  private static boolean startsWith(byte[] bytes, byte[] prefix) {
    if (bytes.length < prefix.length) {
      return false;
    }
    for (int i = 0; i < prefix.length; i++) {
      if (bytes[i] != prefix[i]) {
        return false;
      }
    }
    return true;
  }

  /** One ImageIO read call on a reader whose input is set. */
  @FunctionalInterface
  private interface Decoding<T> {
    T apply(ImageReader reader) throws IOException;
  }

  /** Collects decoder warnings, which ImageIO uses to report truncated JPEG data. */
  private static final class WarningCollector implements IIOReadWarningListener {
    private final List<String> warnings = new ArrayList<>();

    @Override
    public void warningOccurred(ImageReader source, String warning) {
      warnings.add(warning);
    }

    void throwIfAny(String source, String format) throws IOException {
      if (!warnings.isEmpty()) {
        throw new IOException(
            source
                + ": corrupt or truncated "
                + format.toUpperCase(Locale.ROOT)
                + " data (decoder warning: "
                + String.join("; ", warnings)
                + "); replace the file with an intact copy");
      }
    }
  }
}
