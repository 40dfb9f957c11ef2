package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/**
 * Changes brightness and contrast about the image mean: {@code y = (x − mean)·c + mean + b},
 * clamped to [0, 1], with c uniform in [1 − maxContrast, 1 + maxContrast] and b uniform in
 * [−maxBrightness, maxBrightness]. Keypoints are unchanged.
 */
public final class BrightnessContrast implements Transform {
  private final double maxBrightness;
  private final double maxContrast;

  /**
   * Creates the augmentation. {@code maxBrightness} must be at least 0, and {@code maxContrast}
   * must be in [0, 1] so that c never goes negative, which would invert the image.
   */
  public BrightnessContrast(double maxBrightness, double maxContrast) {
    if (!(maxBrightness >= 0 && Double.isFinite(maxBrightness))) {
      throw new IllegalArgumentException(
          "maxBrightness must be finite and non-negative, got " + maxBrightness);
    }
    if (!(maxContrast >= 0 && maxContrast <= 1)) {
      throw new IllegalArgumentException("maxContrast must be in [0, 1], got " + maxContrast);
    }
    this.maxBrightness = maxBrightness;
    this.maxContrast = maxContrast;
  }

  /** Returns the adjusted sample; draws the contrast factor, then the brightness offset. */
  @Override
  public Sample apply(Sample sample, Generator random) {
    double contrast = 1 + maxContrast * (2 * random.nextDouble() - 1);
    double brightness = maxBrightness * (2 * random.nextDouble() - 1);
    return adjust(sample, brightness, contrast);
  }

  /** Returns the sample with {@code y = (x − mean)·contrast + mean + brightness}, clamped. */
  public static Sample adjust(Sample sample, double brightness, double contrast) {
    float[] source = sample.image().pixels();
    double sum = 0;
    for (float value : source) {
      sum += value;
    }
    double mean = sum / source.length;

    // y = x·c + (mean·(1 − c) + b), with the constant folded once.
    float gain = (float) contrast;
    float offset = (float) (mean * (1 - contrast) + brightness);
    float[] adjusted = new float[source.length];
    for (int i = 0; i < source.length; i++) {
      adjusted[i] = Math.clamp(source[i] * gain + offset, 0f, 1f);
    }

    GrayImage image = sample.image();
    return sample.with(
        new GrayImage(image.width(), image.height(), adjusted), sample.keypoints().clone());
  }
}
