package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Size limits of {@link ImageDecoder} and {@link GrayImage}: small files that declare huge or
 * extreme images fail with an IOException that names the file and the size, before decoding.
 */
class ImageSizeLimitTest {

  @TempDir Path dir;

  @Test
  void tallStripPngRejected() throws IOException {
    Path file = TestImages.write(dir, "strip.png", HostileImages.blackPng(1, 200000));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("1x200000 pixels"), error.getMessage());
  }

  @Test
  void wideStripPngRejected() throws IOException {
    Path file = TestImages.write(dir, "wide.png", HostileImages.blackPng(1000000, 2));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("1000000x2 pixels"), error.getMessage());
  }

  @Test
  void hugePngRejectedBeforeDecoding() throws IOException {
    Path file = TestImages.write(dir, "huge.png", HostileImages.pngHeaderOnly(30000, 30000));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("30000x30000 pixels"), error.getMessage());
    assertTrue(error.getMessage().contains("900,000,000 pixels in all"), error.getMessage());
  }

  @Test
  void giantPngNotReportedAsCorrupt() throws IOException {
    Path file = TestImages.write(dir, "giant.png", HostileImages.pngHeaderOnly(50000, 50000));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("50000x50000 pixels"), error.getMessage());
    assertFalse(error.getMessage().contains("corrupt"), error.getMessage());
  }

  @Test
  void hugeJpegRejectedBeforeDecoding() throws IOException {
    Path file = TestImages.write(dir, "huge.jpg", HostileImages.jpegDeclaring(60000, 60000));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("60000x60000 pixels"), error.getMessage());
  }

  @Test
  void pngAtAspectLimitDecodes() throws IOException {
    Path file = TestImages.write(dir, "limit.png", HostileImages.blackPng(1, 100));

    GrayImage image = ImageDecoder.decode(file);

    assertEquals(1, image.width());
    assertEquals(100, image.height());
  }

  @Test
  void pngPastAspectLimitRejected() throws IOException {
    Path file = TestImages.write(dir, "past.png", HostileImages.blackPng(101, 1));

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains("101x1 pixels"), error.getMessage());
    assertTrue(error.getMessage().contains("longer side (101)"), error.getMessage());
  }

  @Test
  void pixelCountJustAboveLimitExact() {
    // 10001 × 10000 is 0.01 % above the limit, which a count in megapixels rounds to the limit.
    String message = GrayImage.describeLimitViolation(10001, 10000);

    assertTrue(message.contains("10001x10000 pixels"), message);
    assertTrue(message.contains("100,010,000 pixels in all"), message);
    assertTrue(message.contains("the limit of 100,000,000 pixels"), message);
  }

  @Test
  void aspectJustAboveLimitExact() {
    // 10001 / 100 is 100.01, which one decimal rounds to the limit of 100.
    String message = GrayImage.describeLimitViolation(100, 10001);

    assertTrue(message.contains("longer side (10001)"), message);
    assertTrue(message.contains("more than 100 times its shorter side (100)"), message);
  }

  @Test
  void fileAboveReadLimitRejected() throws IOException {
    Path file = dir.resolve("big.png");
    try (RandomAccessFile sparse = new RandomAccessFile(file.toFile(), "rw")) {
      sparse.write(HostileImages.blackPng(4, 4));
      sparse.setLength(ImageDecoder.MAX_FILE_BYTES + 1); // sparse, so no disk space is used
    }

    IOException error = assertThrows(IOException.class, () -> ImageDecoder.decode(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("1 GiB"), error.getMessage());
  }

  @Test
  void limitsAcceptBoundaries() {
    assertTrue(GrayImage.isWithinLimits(10000, 10000));
    assertTrue(GrayImage.isWithinLimits(1, 100));
    assertTrue(GrayImage.isWithinLimits(100, 1));
    assertFalse(GrayImage.isWithinLimits(10000, 10001));
    assertFalse(GrayImage.isWithinLimits(1, 101));
    assertFalse(GrayImage.isWithinLimits(0, 10));
    assertFalse(GrayImage.isWithinLimits(65536, 65536));
  }

  @Test
  void overflowingSizeRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> new GrayImage(65536, 65536, new float[0]));

    assertTrue(error.getMessage().contains("4294967296"), error.getMessage());
  }

  @Test
  void blankBeyondArrayLimitRejected() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> GrayImage.blank(65536, 65536));

    assertTrue(error.getMessage().contains("65536x65536"), error.getMessage());
  }

  @Test
  void nullPixelsRaiseNamedError() {
    NullPointerException error =
        assertThrows(NullPointerException.class, () -> new GrayImage(2, 2, null));

    assertTrue(error.getMessage().contains("pixels"), error.getMessage());
  }
}
