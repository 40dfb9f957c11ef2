package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.awt.image.BufferedImage;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Failures of {@link ImageDecoder}: each names the file and the problem. */
class ImageDecoderErrorTest {

  @TempDir Path dir;

  @Test
  void truncatedPngFailsNamingFile() throws IOException {
    byte[] png = TestImages.png(photo());
    Path file = TestImages.write(dir, "cut.png", Arrays.copyOf(png, png.length / 2));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("truncated PNG"), error.getMessage());
  }

  @Test
  void truncatedJpegFailsNamingFile() throws IOException {
    byte[] jpeg = TestImages.jpeg(photo());
    Path file = TestImages.write(dir, "cut.jpg", Arrays.copyOf(jpeg, jpeg.length / 2));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("truncated JPEG"), error.getMessage());
  }

  @Test
  void jpegCutInHeaderFails() throws IOException {
    byte[] jpeg = TestImages.jpeg(photo());
    Path file = TestImages.write(dir, "header.jpg", Arrays.copyOf(jpeg, 40));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("truncated JPEG"), error.getMessage());
  }

  @Test
  void pngWithBadCrcFails() throws IOException {
    byte[] png = TestImages.png(photo());
    png[png.length / 2] ^= 0x55;
    Path file = TestImages.write(dir, "flipped.png", png);

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("CRC mismatch"), error.getMessage());
  }

  @Test
  void gifFailsSayingGif() throws IOException {
    Path file = dir.resolve("face.jpg");
    ImageIO.write(photo(), "gif", file.toFile());

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("looks like a GIF"), error.getMessage());
  }

  @Test
  void textFileFailsSayingText() throws IOException {
    Path file = dir.resolve("face.png");
    Files.writeString(file, "<html>404 Not Found</html>\n", StandardCharsets.US_ASCII);

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("not a PNG or JPEG"), error.getMessage());
    assertTrue(error.getMessage().contains("looks like text"), error.getMessage());
    assertTrue(error.getMessage().contains("404 Not Found"), error.getMessage());
  }

  @Test
  void missingFileFailsAsNotFound() {
    Path file = dir.resolve("absent.jpg");

    NoSuchFileException error =
        assertThrows(NoSuchFileException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("not found"), error.getMessage());
  }

  @Test
  void emptyFileFailsSayingEmpty() throws IOException {
    Path file = TestImages.write(dir, "empty.jpg", new byte[0]);

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("empty"), error.getMessage());
  }

  @Test
  void directoryFailsSayingDirectory() {
    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(dir));

    assertTrue(error.getMessage().contains("directory"), error.getMessage());
  }

  @Test
  void fifoFailsSayingNotRegular() throws Exception {
    Path fifo = dir.resolve("face.png");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assumeTrue(mkfifo.waitFor() == 0, "skipped: mkfifo failed");

    // Opening a FIFO for reading waits for a writer, so a decoder that opens it never returns.
    IOException error =
        assertTimeoutPreemptively(
            Duration.ofSeconds(10),
            () -> assertThrows(IOException.class, () -> ImageDecoder.decode(fifo)));

    assertTrue(error.getMessage().contains(fifo.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("not a regular file"), error.getMessage());
  }

  @Test
  void largeNonImageRejectedUnread() throws IOException {
    Path file = dir.resolve("face.jpg");
    try (RandomAccessFile sparse = new RandomAccessFile(file.toFile(), "rw")) {
      sparse.write("GIF89a".getBytes(StandardCharsets.US_ASCII));
      sparse.setLength(256L << 20); // sparse, so no disk space is used
    }
    var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long threadId = Thread.currentThread().threadId();
    long before = threads.getThreadAllocatedBytes(threadId);

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    long allocated = threads.getThreadAllocatedBytes(threadId) - before;
    assertTrue(error.getMessage().contains("looks like a GIF"), error.getMessage());
    assertTrue(allocated < 16L << 20, "decoding allocated " + allocated + " bytes");
  }

  @Test
  void jpegTwoComponentsFailsUnsupported() throws IOException {
    WritableRaster raster = Raster.createInterleavedRaster(DataBuffer.TYPE_BYTE, 16, 16, 2, null);
    Path file = TestImages.write(dir, "two.jpg", TestImages.jpeg(raster));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("2 color components"), error.getMessage());
  }

  @Test
  void jpeg12BitFailsUnsupported() throws IOException {
    byte[] jpeg = TestImages.jpeg(photo());
    int frame = indexOfMarker(jpeg, 0xc0);
    jpeg[frame + 4] = 12;
    Path file = TestImages.write(dir, "twelve.jpg", jpeg);

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("12-bit samples"), error.getMessage());
  }

  private static int indexOfMarker(byte[] jpeg, int marker) {
    for (int i = 0; i + 1 < jpeg.length; i++) {
      if ((jpeg[i] & 0xff) == 0xff && (jpeg[i + 1] & 0xff) == marker) {
        return i;
      }
    }
    throw new IllegalArgumentException("marker " + Integer.toHexString(marker) + " not found");
  }

  /** Returns a 64x64 RGB image with varied content, so the compressed data is not tiny. */
  private static BufferedImage photo() {
    BufferedImage image = new BufferedImage(64, 64, BufferedImage.TYPE_3BYTE_BGR);
    for (int y = 0; y < 64; y++) {
      for (int x = 0; x < 64; x++) {
        int red = (x * 37 + y * 11) % 256;
        int green = (x * 5 + y * 53) % 256;
        int blue = (x * y) % 256;
        image.setRGB(x, y, (red << 16) | (green << 8) | blue);
      }
    }
    return image;
  }
}
