package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Area-averaging and bilinear resampling, and the size for a given shorter side. */
class ImageResizeTest {

  /** Weights are stored as floats, so sums of a few products differ from exact by ~1e-7. */
  private static final float PIXEL_TOLERANCE = 1e-6f;

  @Test
  void shrinkByTwoAveragesPairs() {
    GrayImage image = new GrayImage(4, 2, new float[] {0, 1, 0.2f, 0.4f, 1, 1, 0, 0});

    GrayImage small = ImageResize.resize(image, 2, 1);

    assertArrayEquals(new float[] {0.75f, 0.15f}, small.pixels(), PIXEL_TOLERANCE);
  }

  @Test
  void shrinkWeightsPartialPixels() {
    GrayImage image = new GrayImage(3, 1, new float[] {0, 0.3f, 0.9f});

    GrayImage small = ImageResize.resize(image, 2, 1);

    // Output 0 covers [0, 1.5): (0 + 0.5 * 0.3) / 1.5; output 1 covers [1.5, 3).
    assertArrayEquals(new float[] {0.1f, 0.7f}, small.pixels(), PIXEL_TOLERANCE);
  }

  @Test
  void enlargeInterpolatesBilinearly() {
    GrayImage image = new GrayImage(2, 1, new float[] {0, 1});

    GrayImage large = ImageResize.resize(image, 4, 1);

    // Output centres map to input x = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
    assertArrayEquals(new float[] {0, 0.25f, 0.75f, 1}, large.pixels(), PIXEL_TOLERANCE);
  }

  @Test
  void enlargeSinglePixelCopiesIt() {
    GrayImage image = new GrayImage(1, 1, new float[] {0.5f});

    GrayImage large = ImageResize.resize(image, 3, 2);

    assertArrayEquals(new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, large.pixels());
  }

  @Test
  void resizeKeepsConstantImage() {
    GrayImage image = GrayImage.blank(37, 23);
    java.util.Arrays.fill(image.pixels(), 0.6f);

    GrayImage resized = ImageResize.resize(image, 11, 50);

    for (float value : resized.pixels()) {
      assertEquals(0.6f, value, PIXEL_TOLERANCE);
    }
  }

  @Test
  void shorterSideKeepsAspectRatio() {
    assertArrayEquals(new int[] {150, 100}, ImageResize.sizeForShorterSide(300, 200, 100));
    assertArrayEquals(new int[] {100, 133}, ImageResize.sizeForShorterSide(150, 200, 100));
    assertArrayEquals(new int[] {64, 64}, ImageResize.sizeForShorterSide(32, 32, 64));
  }
}
