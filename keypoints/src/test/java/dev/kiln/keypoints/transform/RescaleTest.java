package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.SPREAD_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.assertMarksOnKeypoints;
import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RescaleTest {
  /** Keypoint scaling is one multiplication, so only rounding of the last bit remains. */
  private static final double EXACT_TOLERANCE = 1e-12;

  /** Sums of up to a few float products, each rounded to float. */
  private static final double FLOAT_TOLERANCE = 1e-6;

  private static final Generator UNUSED = new Generator(0);

  @ParameterizedTest
  @ValueSource(ints = {2, 3})
  void upscaleKeepsMarksOnKeypoints(int markSize) {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, markSize);

    Sample scaled = new Rescale(180).apply(sample, UNUSED);

    // A mark grows to 2·markSize px, and bilinear blur adds 2 px on each side. The margin is half
    // the scaled mark, so a corner mark counts as inside the frame.
    int checked = assertMarksOnKeypoints(scaled, 5, markSize, "120x90 -> 240x180");
    assertEquals(Sample.POINTS, checked);
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 3})
  void bilinearDownscaleKeepsMarksOnKeypoints(int markSize) {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, markSize);

    Sample scaled = new Rescale(60).apply(sample, UNUSED);

    // A mark shrinks to at most 2 px, and bilinear blur adds 1 px on each side.
    int checked = assertMarksOnKeypoints(scaled, 2.5, markSize / 3.0, "120x90 -> 80x60");
    assertEquals(Sample.POINTS, checked);
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 3})
  void areaDownscaleKeepsMarksOnKeypoints(int markSize) {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, markSize);

    Sample scaled = new Rescale(30).apply(sample, UNUSED);

    // A mark shrinks to 1 px, and area averaging spreads it over at most 2 px.
    int checked = assertMarksOnKeypoints(scaled, 2, markSize / 6.0, "120x90 -> 40x30");
    assertEquals(Sample.POINTS, checked);
  }

  @ParameterizedTest
  @ValueSource(ints = {30, 60, 135, 180})
  void linearRampKeepsPixelCentres(int shorterSide) {
    // Each pixel contains a linear function of its centre. Bilinear interpolation reproduces it
    // exactly, and so does area averaging at the integer ratio 3 (shorter side 30), so every
    // output pixel must contain the same function of the source point under its own centre.
    float[] pixels = new float[120 * 90];
    for (int y = 0; y < 90; y++) {
      for (int x = 0; x < 120; x++) {
        pixels[y * 120 + x] = (float) (0.004 * (x + 0.5) + 0.003 * (y + 0.5));
      }
    }
    Sample sample = new Sample("ramp", new GrayImage(120, 90, pixels), new double[136]);

    GrayImage scaled = new Rescale(shorterSide).apply(sample, UNUSED).image();

    double scaleX = scaled.width() / 120.0;
    double scaleY = scaled.height() / 90.0;
    for (int v = 0; v < scaled.height(); v++) {
      for (int u = 0; u < scaled.width(); u++) {
        double sourceX = (u + 0.5) / scaleX;
        double sourceY = (v + 0.5) / scaleY;
        // Outside the first and last source centres the edge pixel is replicated instead.
        if (sourceX < 0.5 || sourceX > 119.5 || sourceY < 0.5 || sourceY > 89.5) {
          continue;
        }
        double expected = 0.004 * sourceX + 0.003 * sourceY;
        assertEquals(expected, scaled.get(u, v), FLOAT_TOLERANCE, "pixel (" + u + ", " + v + ")");
      }
    }
  }

  @Test
  void landscapeImageScalesHeightToTarget() {
    Rescale.Size size = new Rescale(60).outputSize(120, 90);

    assertEquals(new Rescale.Size(80, 60), size);
  }

  @Test
  void portraitImageScalesWidthToTarget() {
    Sample sample = markedSample(90, 120, new int[][] {{10, 10}, {70, 100}}, 3);

    Sample scaled = new Rescale(45).apply(sample, UNUSED);

    assertEquals(45, scaled.image().width());
    assertEquals(60, scaled.image().height());
  }

  @Test
  void longerSideRoundsToNearestPixel() {
    // 101 · 50 / 77 = 65.58 rounds up, 130 · 96 / 110 = 113.45 rounds down.
    assertEquals(new Rescale.Size(66, 50), new Rescale(50).outputSize(101, 77));
    assertEquals(new Rescale.Size(96, 113), new Rescale(96).outputSize(110, 130));
  }

  @Test
  void keypointsScaleByExactAxisFactors() {
    Sample sample = markedSample(101, 77, new int[][] {{0, 0}, {50, 40}, {97, 73}}, 3);

    Sample scaled = new Rescale(50).apply(sample, UNUSED);

    for (int i = 0; i < Sample.POINTS; i++) {
      assertEquals(sample.x(i) * 66 / 101, scaled.x(i), EXACT_TOLERANCE, "x of point " + i);
      assertEquals(sample.y(i) * 50 / 77, scaled.y(i), EXACT_TOLERANCE, "y of point " + i);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {30, 60, 90, 135})
  void constantImageStaysConstant(int shorterSide) {
    float[] pixels = new float[120 * 90];
    Arrays.fill(pixels, 0.4f);
    Sample sample = new Sample("grey", new GrayImage(120, 90, pixels), new double[136]);

    GrayImage scaled = new Rescale(shorterSide).apply(sample, UNUSED).image();

    for (float value : scaled.pixels()) {
      assertEquals(0.4, value, FLOAT_TOLERANCE);
    }
  }

  @Test
  void sameSizeKeepsImageUnchanged() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    GrayImage scaled = new Rescale(90).apply(sample, UNUSED).image();

    assertEquals(sample.image(), scaled);
  }

  @Test
  void inputSampleStaysUnmodified() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    Sample copy = new Sample(sample.name(), sample.image().copy(), sample.keypoints().clone());

    new Rescale(45).apply(sample, UNUSED);

    assertEquals(copy.image(), sample.image());
    assertEquals(Arrays.toString(copy.keypoints()), Arrays.toString(sample.keypoints()));
  }

  @Test
  void nonPositiveSideRaisesError() {
    assertThrows(IllegalArgumentException.class, () -> new Rescale(0));
  }

  @Test
  void resizeBeyondArrayLimitRaisesError() {
    // 110 x 22 million = 2.42 billion floats, which overflows an int array length.
    GrayImage strip = GrayImage.blank(1, 200000);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Rescale.resize(strip, 110, 22_000_000));

    assertTrue(error.getMessage().contains("2420000000"), error.getMessage());
  }

  @Test
  void outputSideBeyondIntRaisesError() {
    Rescale rescale = new Rescale(110);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> rescale.outputSize(1, 2_000_000_000));

    assertTrue(error.getMessage().contains("220000000000"), error.getMessage());
  }
}
