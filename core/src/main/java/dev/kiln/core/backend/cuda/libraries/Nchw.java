package dev.kiln.core.backend.cuda.libraries;

/**
 * The shape of a 4d float32 tensor in NCHW layout: batch, channels, height, width, with the width
 * varying fastest in memory. This is the shape that a cuDNN tensor descriptor carries.
 *
 * @param n batch
 * @param c channels
 * @param h height
 * @param w width
 */
public record Nchw(int n, int c, int h, int w) {

  /** Bytes per element: kiln's device tensors are float32. */
  public static final int FLOAT_BYTES = Float.BYTES;

  /**
   * Validates the sizes. cuDNN's legacy descriptors index with 32-bit integers, so the element
   * count must fit in an {@code int}.
   */
  public Nchw {
    if (n < 1 || c < 1 || h < 1 || w < 1) {
      throw new IllegalArgumentException(
          "every size of an NCHW shape must be positive, got " + text(n, c, h, w));
    }
    long elements = (long) n * c * h * w;
    if (elements > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "shape "
              + text(n, c, h, w)
              + " has "
              + elements
              + " elements, more than cuDNN's legacy descriptors index (2^31 - 1): split the"
              + " batch");
    }
  }

  /** Returns a shape of {@code elements} values as [1, 1, 1, elements], for elementwise calls. */
  public static Nchw flat(int elements) {
    return new Nchw(1, 1, 1, elements);
  }

  /** Returns the sizes as {@code {n, c, h, w}}. */
  public int[] dims() {
    return new int[] {n, c, h, w};
  }

  /**
   * Returns the strides, in elements, of a packed NCHW tensor: {@code {c*h*w, h*w, w, 1}}. A stride
   * is how far apart in memory two neighbors along that axis are.
   */
  public int[] strides() {
    return new int[] {c * h * w, h * w, w, 1};
  }

  /** Returns the number of elements. */
  public int elements() {
    return n * c * h * w;
  }

  /** Returns the size in bytes as float32. */
  public long bytes() {
    return (long) elements() * FLOAT_BYTES;
  }

  @Override
  public String toString() {
    return text(n, c, h, w);
  }

  private static String text(int n, int c, int h, int w) {
    return "[" + n + ", " + c + ", " + h + ", " + w + "]";
  }
}
