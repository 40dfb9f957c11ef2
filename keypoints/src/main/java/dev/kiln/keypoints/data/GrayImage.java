package dev.kiln.keypoints.data;

import java.util.Arrays;

/**
 * A grayscale image: {@code width * height} floats in [0, 1], row-major, with (0, 0) at the
 * top-left. Pixel (x, y) covers the square [x, x + 1) × [y, y + 1), so its centre is at (x + 0.5, y
 * + 0.5) in the continuous coordinates that keypoints use.
 */
public record GrayImage(int width, int height, float[] pixels) {

  public GrayImage {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException(
          "image size must be positive, got " + width + "x" + height);
    }
    if (pixels.length != width * height) {
      throw new IllegalArgumentException(
          "a "
              + width
              + "x"
              + height
              + " image needs "
              + width * height
              + " pixels, got "
              + pixels.length);
    }
  }

  /** Returns a black image. */
  public static GrayImage blank(int width, int height) {
    return new GrayImage(width, height, new float[width * height]);
  }

  /** Returns the value of pixel (x, y). */
  public float get(int x, int y) {
    return pixels[y * width + x];
  }

  /** Sets the value of pixel (x, y). */
  public void set(int x, int y, float value) {
    pixels[y * width + x] = value;
  }

  /** Returns a deep copy. */
  public GrayImage copy() {
    return new GrayImage(width, height, pixels.clone());
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof GrayImage o
        && o.width == width
        && o.height == height
        && Arrays.equals(o.pixels, pixels);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * width + height) + Arrays.hashCode(pixels);
  }

  @Override
  public String toString() {
    return "GrayImage[" + width + "x" + height + "]";
  }
}
