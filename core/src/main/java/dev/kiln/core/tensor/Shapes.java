package dev.kiln.core.tensor;

import java.util.Arrays;

/** Helpers for shapes: element counts, strides, formatting and validation. */
public final class Shapes {
  private Shapes() {}

  /** Returns the number of elements of a shape; the empty shape is a scalar with one element. */
  public static int numel(int[] shape) {
    long count = 1;
    for (int size : shape) {
      if (size < 0) {
        throw new IllegalArgumentException("negative size in shape " + format(shape));
      }
      count *= size;
    }
    if (count > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "shape " + format(shape) + " has " + count + " elements, more than 2^31 - 1");
    }
    return (int) count;
  }

  /** Returns the row-major strides of a contiguous tensor of this shape, in elements. */
  public static int[] strides(int[] shape) {
    int[] strides = new int[shape.length];
    int stride = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      strides[d] = stride;
      stride *= shape[d];
    }
    return strides;
  }

  /** Formats a shape as {@code [2, 3, 4]}. */
  public static String format(int[] shape) {
    return Arrays.toString(shape);
  }

  /**
   * Resolves a dimension that may count from the end ({@code -1} is the last).
   *
   * @throws IllegalArgumentException naming the dimension and the shape
   */
  public static int normalizeDim(int dim, int rank, String op, int[] shape) {
    int resolved = dim < 0 ? dim + rank : dim;
    if (resolved < 0 || resolved >= rank) {
      throw new IllegalArgumentException(
          op
              + ": dimension "
              + dim
              + " is out of range for a tensor of shape "
              + format(shape)
              + " (valid: "
              + -rank
              + " to "
              + (rank - 1)
              + ")");
    }
    return resolved;
  }
}
