package dev.kiln.core.ops;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/** NumPy broadcasting: shapes align on the right, and a size of 1 stretches to match. */
public final class Broadcast {
  private Broadcast() {}

  /** Returns the broadcast shape of {@code a} and {@code b}, or throws showing both shapes. */
  public static int[] shape(String op, int[] a, int[] b) {
    int rank = Math.max(a.length, b.length);
    int[] result = new int[rank];
    for (int i = 0; i < rank; i++) {
      int sizeA = i < rank - a.length ? 1 : a[i - (rank - a.length)];
      int sizeB = i < rank - b.length ? 1 : b[i - (rank - b.length)];
      if (sizeA != sizeB && sizeA != 1 && sizeB != 1) {
        throw new IllegalArgumentException(
            op
                + ": shapes "
                + Shapes.format(a)
                + " and "
                + Shapes.format(b)
                + " cannot be broadcast: dimension "
                + i
                + " has sizes "
                + sizeA
                + " and "
                + sizeB);
      }
      result[i] = sizeA == 1 ? sizeB : sizeA;
    }
    return result;
  }

  /** Returns {@code shape} with leading 1s added up to {@code rank} dimensions. */
  public static int[] alignRank(int[] shape, int rank) {
    int[] result = new int[rank];
    int pad = rank - shape.length;
    for (int i = 0; i < rank; i++) {
      result[i] = i < pad ? 1 : shape[i - pad];
    }
    return result;
  }

  /**
   * Sums a gradient of the broadcast shape back down to {@code shape}: over the leading dimensions
   * that broadcasting added and over every dimension that was stretched from 1.
   */
  public static Tensor reduceTo(Tensor grad, int[] shape) {
    int[] gradShape = grad.shape();
    if (java.util.Arrays.equals(gradShape, shape)) {
      return grad;
    }
    int[] aligned = alignRank(shape, gradShape.length);
    boolean[] reduced = new boolean[gradShape.length];
    for (int d = 0; d < gradShape.length; d++) {
      reduced[d] = aligned[d] == 1 && gradShape[d] != 1;
    }
    return Reductions.sumKeepDims(grad, reduced).reshape(shape);
  }
}
