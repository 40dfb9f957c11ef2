package dev.kiln.keypoints.transform;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/** Square cropping shared by {@link RandomCrop} and {@link CenterCrop}. */
final class Crops {
  private Crops() {}

  static void requirePositiveSize(int size) {
    if (size <= 0) {
      throw new IllegalArgumentException("crop size must be positive, got " + size);
    }
  }

  /** Raises if the sample's image is narrower or shorter than a square crop of {@code size}. */
  static void requireFits(Sample sample, int size) {
    GrayImage image = sample.image();
    if (image.width() < size || image.height() < size) {
      throw new IllegalArgumentException(
          sample.name()
              + ": image is "
              + image.width()
              + "x"
              + image.height()
              + ", smaller than the "
              + size
              + "x"
              + size
              + " crop; rescale it to at least the crop size first");
    }
  }

  /**
   * Returns the {@code size × size} window whose top-left pixel is ({@code left}, {@code top}),
   * with the keypoints shifted by the same offset.
   */
  static Sample crop(Sample sample, int left, int top, int size) {
    GrayImage image = sample.image();
    float[] pixels = new float[size * size];
    for (int y = 0; y < size; y++) {
      System.arraycopy(image.pixels(), (top + y) * image.width() + left, pixels, y * size, size);
    }

    double[] keypoints = sample.keypoints().clone();
    for (int i = 0; i < keypoints.length; i += 2) {
      keypoints[i] -= left;
      keypoints[i + 1] -= top;
    }
    return sample.with(new GrayImage(size, size, pixels), keypoints);
  }
}
