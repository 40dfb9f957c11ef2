package dev.kiln.keypoints.data;

import static dev.kiln.keypoints.data.TestImages.SIZE;
import static dev.kiln.keypoints.data.TestImages.quadrant;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.IntBinaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Decoding of every supported PNG and JPEG kind into gray, with known pixel values. */
class ImageDecoderTest {

  /** PNG is lossless, so only float rounding separates decoded and expected values. */
  private static final double PNG_TOLERANCE = 1e-6;

  /**
   * JPEG error bound of 3 levels of 255. At quality 1.0 every quantization step is 1, and the test
   * images have flat 8x8 blocks, so only the DC coefficient is nonzero and loses under half a
   * level. The 8-bit color transforms (RGB or YCCK to YCbCr and back) round by about one level.
   */
  private static final double JPEG_TOLERANCE = 3.0 / 255;

  /** 8-bit gray levels of the four quadrants. */
  private static final int[] GRAY = {0, 85, 170, 255};

  /** 16-bit gray levels of the four quadrants. */
  private static final int[] GRAY16 = {0, 1000, 40000, 65535};

  /** RGB colors of the four quadrants, away from 0 and 255 so YCbCr never clamps. */
  private static final int[][] RGB = {{200, 60, 40}, {40, 180, 90}, {70, 90, 210}, {128, 128, 128}};

  /** Alpha of the four quadrants; the decoder must ignore it. */
  private static final int[] ALPHA = {255, 128, 0, 30};

  @TempDir Path dir;

  @Test
  void pngGray8DecodesExactly() throws IOException {
    byte[] png = TestImages.png(grayImage());

    assertEquals(0, TestImages.pngColorType(png), "PNG color type");
    assertEquals(8, TestImages.pngBitDepth(png), "PNG bit depth");
    assertPixels(grayExpected(), decode("gray8.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngGray16DividesBy65535() throws IOException {
    BufferedImage image = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_USHORT_GRAY);
    fill(image.getRaster(), (x, y) -> GRAY16[quadrant(x, y)]);
    byte[] png = TestImages.png(image);

    assertEquals(0, TestImages.pngColorType(png), "PNG color type");
    assertEquals(16, TestImages.pngBitDepth(png), "PNG bit depth");
    assertPixels(
        (x, y) -> GRAY16[quadrant(x, y)] / 65535.0, decode("gray16.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngGrayAlphaIgnoresAlpha() throws IOException {
    ComponentColorModel model =
        new ComponentColorModel(
            ColorSpace.getInstance(ColorSpace.CS_GRAY),
            true,
            false,
            Transparency.TRANSLUCENT,
            DataBuffer.TYPE_BYTE);
    WritableRaster raster = model.createCompatibleWritableRaster(SIZE, SIZE);
    fill(raster, (x, y) -> GRAY[quadrant(x, y)]);
    fillBand(raster, 1, (x, y) -> ALPHA[quadrant(x, y)]);
    byte[] png = TestImages.png(new BufferedImage(model, raster, false, null));

    assertEquals(4, TestImages.pngColorType(png), "PNG color type");
    assertPixels(grayExpected(), decode("gray-alpha.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngRgb8UsesBt601Luma() throws IOException {
    byte[] png = TestImages.png(rgbImage(BufferedImage.TYPE_3BYTE_BGR));

    assertEquals(2, TestImages.pngColorType(png), "PNG color type");
    assertEquals(8, TestImages.pngBitDepth(png), "PNG bit depth");
    assertPixels(rgbExpected(), decode("rgb8.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngRgbaIgnoresAlpha() throws IOException {
    BufferedImage image = rgbImage(BufferedImage.TYPE_4BYTE_ABGR);
    fillBand(image.getRaster(), 3, (x, y) -> ALPHA[quadrant(x, y)]);
    byte[] png = TestImages.png(image);

    assertEquals(6, TestImages.pngColorType(png), "PNG color type");
    assertPixels(rgbExpected(), decode("rgba.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngRgb16UsesBt601Luma() throws IOException {
    ComponentColorModel model =
        new ComponentColorModel(
            ColorSpace.getInstance(ColorSpace.CS_sRGB),
            false,
            false,
            Transparency.OPAQUE,
            DataBuffer.TYPE_USHORT);
    WritableRaster raster = model.createCompatibleWritableRaster(SIZE, SIZE);
    for (int band = 0; band < 3; band++) {
      int b = band;
      fillBand(raster, band, (x, y) -> RGB[quadrant(x, y)][b] * 257);
    }
    byte[] png = TestImages.png(new BufferedImage(model, raster, false, null));

    assertEquals(2, TestImages.pngColorType(png), "PNG color type");
    assertEquals(16, TestImages.pngBitDepth(png), "PNG bit depth");
    assertPixels(rgbExpected(), decode("rgb16.png", png), PNG_TOLERANCE);
  }

  @Test
  void pngPaletteUsesPaletteColors() throws IOException {
    byte[] red = new byte[4];
    byte[] green = new byte[4];
    byte[] blue = new byte[4];
    for (int i = 0; i < 4; i++) {
      red[i] = (byte) RGB[i][0];
      green[i] = (byte) RGB[i][1];
      blue[i] = (byte) RGB[i][2];
    }
    IndexColorModel palette = new IndexColorModel(8, 4, red, green, blue);
    BufferedImage image = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_BYTE_INDEXED, palette);
    fill(image.getRaster(), TestImages::quadrant);
    byte[] png = TestImages.png(image);

    assertEquals(3, TestImages.pngColorType(png), "PNG color type");
    assertPixels(rgbExpected(), decode("palette.png", png), PNG_TOLERANCE);
  }

  @Test
  void jpegGrayWithinTolerance() throws IOException {
    assertPixels(grayExpected(), decode("gray.jpg", TestImages.jpeg(grayImage())), JPEG_TOLERANCE);
  }

  @Test
  void jpegRgbWithinTolerance() throws IOException {
    byte[] jpeg = TestImages.jpeg(rgbImage(BufferedImage.TYPE_3BYTE_BGR));

    assertPixels(rgbExpected(), decode("rgb.jpg", jpeg), JPEG_TOLERANCE);
  }

  @Test
  void pngNamedJpgDecodesAsPng() throws IOException {
    byte[] png = TestImages.png(rgbImage(BufferedImage.TYPE_4BYTE_ABGR));

    assertPixels(rgbExpected(), decode("really-png.jpg", png), PNG_TOLERANCE);
  }

  @Test
  void jpegNamedPngDecodesAsJpeg() throws IOException {
    byte[] jpeg = TestImages.jpeg(rgbImage(BufferedImage.TYPE_3BYTE_BGR));

    assertPixels(rgbExpected(), decode("really-jpeg.png", jpeg), JPEG_TOLERANCE);
  }

  @Test
  void adobeCmykJpegGivesExpectedGray() throws IOException {
    // Photoshop-style CMYK: an APP14 marker, samples stored as 255 - ink.
    byte[] jpeg = TestImages.withAdobeMarker(TestImages.jpeg(cmykRaster(true)), 0);

    assertPixels(this::cmykExpected, decode("adobe-cmyk.jpg", jpeg), JPEG_TOLERANCE);
  }

  @Test
  void plainCmykJpegGivesExpectedGray() throws IOException {
    // Without APP14 the samples are plain ink amounts.
    byte[] jpeg = TestImages.jpeg(cmykRaster(false));

    assertPixels(this::cmykExpected, decode("plain-cmyk.jpg", jpeg), JPEG_TOLERANCE);
  }

  @Test
  void adobeYcckJpegGivesExpectedGray() throws IOException {
    WritableRaster raster = cmykRaster(true);
    for (int y = 0; y < SIZE; y++) {
      for (int x = 0; x < SIZE; x++) {
        // YCCK stores 255 - (stored C, M, Y) as RGB through the JFIF YCbCr transform.
        double r = 255 - raster.getSample(x, y, 0);
        double g = 255 - raster.getSample(x, y, 1);
        double b = 255 - raster.getSample(x, y, 2);
        raster.setSample(x, y, 0, toByte(0.299 * r + 0.587 * g + 0.114 * b));
        raster.setSample(x, y, 1, toByte(128 - 0.168736 * r - 0.331264 * g + 0.5 * b));
        raster.setSample(x, y, 2, toByte(128 + 0.5 * r - 0.418688 * g - 0.081312 * b));
      }
    }
    byte[] jpeg = TestImages.withAdobeMarker(TestImages.jpeg(raster), 2);

    assertPixels(this::cmykExpected, decode("ycck.jpg", jpeg), JPEG_TOLERANCE);
  }

  @Test
  void rawSampleFilesAllDecode() throws IOException {
    Path folder = TestData.facialKeypoints().resolve("raw-sample");
    List<Path> images;
    try (Stream<Path> files = Files.list(folder)) {
      images = files.filter(f -> f.toString().endsWith(".jpg")).sorted().toList();
    }

    assertFalse(images.isEmpty(), "no .jpg files in " + folder);
    for (Path file : images) {
      GrayImage image = ImageDecoder.decode(file);
      float min = Float.MAX_VALUE;
      float max = -Float.MAX_VALUE;
      for (float value : image.pixels()) {
        min = Math.min(min, value);
        max = Math.max(max, value);
      }
      assertTrue(min >= 0, file + ": minimum pixel " + min + " below 0");
      assertTrue(max <= 1, file + ": maximum pixel " + max + " above 1");
      assertTrue(max > min, file + ": decoded to a flat image");
    }
  }

  /** Ink per quadrant: pure cyan, white (no ink), black (K only), magenta. */
  private static final int[][] INK = {{255, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 255}, {0, 255, 0, 0}};

  /** Expected gray: cyan = G + B = 0.701, white = 1, black = 0, magenta = R + B = 0.413. */
  private double cmykExpected(int x, int y) {
    int[] ink = INK[quadrant(x, y)];
    double[] clear = new double[4];
    for (int i = 0; i < 4; i++) {
      clear[i] = 1 - ink[i] / 255.0;
    }
    return GrayConversion.luma(clear[0] * clear[3], clear[1] * clear[3], clear[2] * clear[3]);
  }

  private static WritableRaster cmykRaster(boolean inverted) {
    WritableRaster raster =
        Raster.createInterleavedRaster(DataBuffer.TYPE_BYTE, SIZE, SIZE, 4, null);
    for (int band = 0; band < 4; band++) {
      int b = band;
      fillBand(
          raster, band, (x, y) -> inverted ? 255 - INK[quadrant(x, y)][b] : INK[quadrant(x, y)][b]);
    }
    return raster;
  }

  private static int toByte(double value) {
    return (int) Math.max(0, Math.min(255, Math.round(value)));
  }

  private static BufferedImage grayImage() {
    BufferedImage image = new BufferedImage(SIZE, SIZE, BufferedImage.TYPE_BYTE_GRAY);
    fill(image.getRaster(), (x, y) -> GRAY[quadrant(x, y)]);
    return image;
  }

  private static BufferedImage rgbImage(int type) {
    BufferedImage image = new BufferedImage(SIZE, SIZE, type);
    for (int band = 0; band < 3; band++) {
      int b = band;
      fillBand(image.getRaster(), band, (x, y) -> RGB[quadrant(x, y)][b]);
    }
    return image;
  }

  private static PixelFunction grayExpected() {
    return (x, y) -> GRAY[quadrant(x, y)] / 255.0;
  }

  private static PixelFunction rgbExpected() {
    return (x, y) -> {
      int[] c = RGB[quadrant(x, y)];
      return 0.299 * c[0] / 255 + 0.587 * c[1] / 255 + 0.114 * c[2] / 255;
    };
  }

  private static void fill(WritableRaster raster, IntBinaryOperator value) {
    fillBand(raster, 0, value);
  }

  private static void fillBand(WritableRaster raster, int band, IntBinaryOperator value) {
    for (int y = 0; y < raster.getHeight(); y++) {
      for (int x = 0; x < raster.getWidth(); x++) {
        raster.setSample(x, y, band, value.applyAsInt(x, y));
      }
    }
  }

  private GrayImage decode(String name, byte[] bytes) throws IOException {
    return ImageDecoder.decode(TestImages.write(dir, name, bytes));
  }

  /** The expected gray value of pixel (x, y). */
  interface PixelFunction {
    double at(int x, int y);
  }

  private static void assertPixels(PixelFunction expected, GrayImage image, double tolerance) {
    assertEquals(SIZE, image.width(), "width");
    assertEquals(SIZE, image.height(), "height");

    double worst = 0;
    String where = "";
    for (int y = 0; y < SIZE; y++) {
      for (int x = 0; x < SIZE; x++) {
        double error = Math.abs(image.get(x, y) - expected.at(x, y));
        if (error > worst) {
          worst = error;
          where =
              "(" + x + ", " + y + "): got " + image.get(x, y) + ", expected " + expected.at(x, y);
        }
      }
    }
    assertTrue(worst <= tolerance, "largest error " + worst + " > " + tolerance + " at " + where);
  }
}
