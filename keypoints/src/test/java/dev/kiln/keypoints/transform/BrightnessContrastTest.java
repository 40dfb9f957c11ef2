package dev.kiln.keypoints.transform;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class BrightnessContrastTest {
  /** Pixel arithmetic runs in float. */
  private static final double FLOAT_TOLERANCE = 1e-5;

  private static Sample noiseSample(double low, double high, long seed) {
    Generator random = new Generator(seed);
    float[] pixels = new float[64 * 48];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) (low + (high - low) * random.nextDouble());
    }
    double[] keypoints = new double[2 * Sample.POINTS];
    for (int i = 0; i < keypoints.length; i++) {
      keypoints[i] = random.nextDouble() * 48;
    }
    return new Sample("noise", new GrayImage(64, 48, pixels), keypoints);
  }

  private static double mean(float[] values) {
    double sum = 0;
    for (float value : values) {
      sum += value;
    }
    return sum / values.length;
  }

  private static double standardDeviation(float[] values) {
    double mean = mean(values);
    double sum = 0;
    for (float value : values) {
      sum += (value - mean) * (value - mean);
    }
    return Math.sqrt(sum / values.length);
  }

  @Test
  void extremeSettingsKeepValuesInUnitRange() {
    Sample sample = noiseSample(0, 1, 1);
    BrightnessContrast adjustment = new BrightnessContrast(1, 1);
    Generator random = new Generator(2);

    for (int draw = 0; draw < 50; draw++) {
      for (float value : adjustment.apply(sample, random).image().pixels()) {
        assertTrue(value >= 0, "value " + value + " in draw " + draw);
        assertTrue(value <= 1, "value " + value + " in draw " + draw);
      }
    }
  }

  @Test
  void keypointsStayUnchanged() {
    Sample sample = noiseSample(0, 1, 1);

    Sample adjusted = new BrightnessContrast(0.1, 0.2).apply(sample, new Generator(3));

    assertArrayEquals(sample.keypoints(), adjusted.keypoints());
  }

  @Test
  void drawnFactorsStayWithinBounds() {
    // Values in [0.3, 0.7] never reach the clamp under b ≤ 0.1 and c ≤ 1.2, so the output mean
    // shifts by exactly b and the standard deviation scales by exactly c.
    Sample sample = noiseSample(0.3, 0.7, 4);
    BrightnessContrast adjustment = new BrightnessContrast(0.1, 0.2);
    Generator random = new Generator(5);
    double meanBefore = mean(sample.image().pixels());
    double deviationBefore = standardDeviation(sample.image().pixels());
    Set<Long> distinctOffsets = new HashSet<>();

    for (int draw = 0; draw < 40; draw++) {
      float[] adjusted = adjustment.apply(sample, random).image().pixels();
      double brightness = mean(adjusted) - meanBefore;
      double contrast = standardDeviation(adjusted) / deviationBefore;

      assertTrue(Math.abs(brightness) <= 0.1 + FLOAT_TOLERANCE, "brightness " + brightness);
      assertTrue(contrast >= 0.8 - FLOAT_TOLERANCE, "contrast " + contrast);
      assertTrue(contrast <= 1.2 + FLOAT_TOLERANCE, "contrast " + contrast);
      distinctOffsets.add(Math.round(brightness * 1000));
    }

    assertTrue(distinctOffsets.size() > 10, "offsets barely vary: " + distinctOffsets);
  }

  @Test
  void adjustAppliesFormulaWithClamp() {
    Sample sample = noiseSample(0, 1, 6);
    float[] pixels = sample.image().pixels();
    double mean = mean(pixels);

    float[] adjusted = BrightnessContrast.adjust(sample, 0.05, 1.5).image().pixels();

    for (int i = 0; i < pixels.length; i++) {
      double expected = Math.clamp((pixels[i] - mean) * 1.5 + mean + 0.05, 0, 1);
      assertEquals(expected, adjusted[i], FLOAT_TOLERANCE, "pixel " + i);
    }
  }

  @Test
  void zeroSettingsKeepImage() {
    Sample sample = noiseSample(0, 1, 7);

    Sample adjusted = new BrightnessContrast(0, 0).apply(sample, new Generator(8));

    assertArrayEquals(sample.image().pixels(), adjusted.image().pixels(), (float) FLOAT_TOLERANCE);
  }

  @Test
  void sameSeedGivesSameOutput() {
    Sample sample = noiseSample(0, 1, 9);
    BrightnessContrast adjustment = new BrightnessContrast(0.1, 0.2);

    Sample first = adjustment.apply(sample, new Generator(10));
    Sample second = adjustment.apply(sample, new Generator(10));

    assertEquals(first.image(), second.image());
  }

  @Test
  void invalidSettingsRaiseError() {
    assertThrows(IllegalArgumentException.class, () -> new BrightnessContrast(-0.1, 0.2));
    assertThrows(IllegalArgumentException.class, () -> new BrightnessContrast(0.1, 1.5));
  }
}
