package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;

/** CPU reference kernels for reductions. Sums accumulate in double for both dtypes. */
public final class ReduceKernels {
  private ReduceKernels() {}

  /**
   * Sums {@code x} over the dimensions where {@code reduced[d]} is true and writes the result to
   * {@code out}, whose shape is {@code shape} with those dimensions set to 1.
   */
  public static void sum(Storage x, int[] shape, boolean[] reduced, Storage out) {
    int rank = shape.length;
    int[] outShape = shape.clone();
    for (int d = 0; d < rank; d++) {
      if (reduced[d]) {
        outShape[d] = 1;
      }
    }
    int[] outStrides = ElementwiseKernels.broadcastStrides(outShape, shape);
    double[] accumulator = new double[out.size()];
    int[] index = new int[rank];
    int outOffset = 0;
    int size = x.size();
    for (int i = 0; i < size; i++) {
      accumulator[outOffset] += x.get(i);
      for (int d = rank - 1; d >= 0; d--) {
        index[d]++;
        outOffset += outStrides[d];
        if (index[d] < shape[d]) {
          break;
        }
        outOffset -= outStrides[d] * shape[d];
        index[d] = 0;
      }
    }
    for (int i = 0; i < accumulator.length; i++) {
      out.set(i, accumulator[i]);
    }
  }

  /**
   * Finds the maximum of {@code x} along {@code dim}. Writes the values to {@code values} and their
   * positions along {@code dim} to {@code indices}, both of the shape with {@code dim} removed. On
   * ties the first position wins; a NaN is the maximum, as in PyTorch.
   */
  public static void max(Storage x, int[] shape, int dim, Storage values, int[] indices) {
    int outer = 1;
    for (int d = 0; d < dim; d++) {
      outer *= shape[d];
    }
    int length = shape[dim];
    int inner = Shapes.numel(shape) / Math.max(1, outer * length);
    for (int o = 0; o < outer; o++) {
      for (int i = 0; i < inner; i++) {
        int base = o * length * inner + i;
        double best = x.get(base);
        int bestIndex = 0;
        for (int k = 1; k < length && !Double.isNaN(best); k++) {
          double value = x.get(base + k * inner);
          if (value > best || Double.isNaN(value)) {
            best = value;
            bestIndex = k;
          }
        }
        values.set(o * inner + i, best);
        indices[o * inner + i] = bestIndex;
      }
    }
  }
}
