package dev.kiln.keypoints.data;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;

/**
 * A grayscale image: {@code width * height} floats in [0, 1], row-major, with (0, 0) at the
 * top-left. Pixel (x, y) covers the square [x, x + 1) × [y, y + 1), so its centre is at (x + 0.5, y
 * + 0.5) in the continuous coordinates that keypoints use.
 *
 * <p>The constructor checks the size but not the pixel values, because transforms pass intermediate
 * values through it. {@link #MAX_PIXELS} and {@link #MAX_ASPECT_RATIO} bound the images that {@link
 * ImageDecoder} and the keypoint detector accept.
 */
public record GrayImage(int width, int height, float[] pixels) {

  // Why these limits: a 100-megapixel image takes 300 MB as an 8-bit RGB raster and 400 MB as
  // floats, which fits a default JVM heap on an 8 GB machine. The detector rescales the shorter
  // side to 1.15 times its input side S, so the rescaled image has about (1.15 S)² × ratio pixels:
  // with a ratio of at most 100 and S at most 1024 that is under 140 million floats, where a
  // 1x200000 strip at S = 96 would need 2.4 billion, more than a Java array holds.
  // NOTE: photos from 108- and 200-megapixel phone cameras exceed MAX_PIXELS; they must be cropped
  // or downscaled first, which a face crop needs anyway.

  /** Maximum number of pixels, width × height, of an image that the decoder and detector accept. */
  public static final long MAX_PIXELS = 100_000_000L;

  /** Maximum ratio of the longer side to the shorter side that the decoder and detector accept. */
  public static final int MAX_ASPECT_RATIO = 100;

  public GrayImage {
    Objects.requireNonNull(pixels, "pixels must not be null");
    long count = pixelCount(width, height);
    if (pixels.length != count) {
      throw new IllegalArgumentException(
          "a " + width + "x" + height + " image needs " + count + " pixels, got " + pixels.length);
    }
  }

  /** Returns a black image. */
  public static GrayImage blank(int width, int height) {
    long count = pixelCount(width, height);
    if (count > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "a "
              + width
              + "x"
              + height
              + " image has "
              + count
              + " pixels, more than a Java array holds ("
              + Integer.MAX_VALUE
              + ")");
    }
    return new GrayImage(width, height, new float[(int) count]);
  }

  /**
   * Returns whether a {@code width × height} image is within {@link #MAX_PIXELS} and {@link
   * #MAX_ASPECT_RATIO}. Non-positive sizes are not.
   */
  public static boolean isWithinLimits(long width, long height) {
    if (width <= 0 || height <= 0 || width > Integer.MAX_VALUE || height > Integer.MAX_VALUE) {
      return false;
    }
    long shorter = Math.min(width, height);
    long longer = Math.max(width, height);
    return width * height <= MAX_PIXELS && longer <= shorter * MAX_ASPECT_RATIO;
  }

  /**
   * Returns why a {@code width × height} image is outside the limits of {@link #isWithinLimits},
   * and what to do, for the end of an error message.
   */
  public static String describeLimitViolation(long width, long height) {
    String size = width + "x" + height + " pixels";
    if (width <= 0 || height <= 0) {
      return "the image size " + size + " is invalid; both sides must be positive";
    }
    if (width * (double) height > MAX_PIXELS) {
      // Exact counts, because a rounded count such as "100.0 megapixels" can equal the limit.
      return String.format(
          Locale.ROOT,
          "the image is %s, %,d pixels in all, more than the limit of %,d pixels; crop the face out"
              + " of the image or downscale it",
          size,
          BigInteger.valueOf(width).multiply(BigInteger.valueOf(height)),
          MAX_PIXELS);
    }
    return String.format(
        Locale.ROOT,
        "the image is %s, so its longer side (%d) is more than %d times its shorter side (%d); crop"
            + " the face out of the image",
        size,
        Math.max(width, height),
        MAX_ASPECT_RATIO,
        Math.min(width, height));
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

  /** Returns {@code width * height} without int overflow, after checking that both are positive. */
  private static long pixelCount(int width, int height) {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException(
          "image size must be positive, got " + width + "x" + height);
    }
    return (long) width * height;
  }
}
