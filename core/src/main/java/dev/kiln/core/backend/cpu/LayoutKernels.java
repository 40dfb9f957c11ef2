package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;

/** CPU kernels that move elements between layouts: permute, and block copies for slice/cat. */
public final class LayoutKernels {
  private LayoutKernels() {}

  /**
   * Writes {@code x} (of {@code shape}) with its dimensions reordered: output dimension {@code i}
   * is input dimension {@code dims[i]}.
   */
  public static void permute(Storage x, int[] shape, int[] dims, Storage out) {
    int rank = shape.length;
    int[] inStrides = Shapes.strides(shape);
    int[] outShape = new int[rank];
    int[] strides = new int[rank];
    for (int i = 0; i < rank; i++) {
      outShape[i] = shape[dims[i]];
      strides[i] = inStrides[dims[i]];
    }
    int[] index = new int[rank];
    int inOffset = 0;
    int size = out.size();
    for (int i = 0; i < size; i++) {
      out.set(i, x.get(inOffset));
      for (int d = rank - 1; d >= 0; d--) {
        index[d]++;
        inOffset += strides[d];
        if (index[d] < outShape[d]) {
          break;
        }
        inOffset -= strides[d] * outShape[d];
        index[d] = 0;
      }
    }
  }

  /**
   * Copies a block between two tensors viewed as [outer, length, inner] along one dimension: for
   * each outer index, {@code count * inner} contiguous elements go from position {@code srcStart}
   * of a source of length {@code srcLength} to position {@code dstStart} of a destination of length
   * {@code dstLength}.
   */
  public static void copyAlongDim(
      Storage src,
      int srcLength,
      int srcStart,
      Storage dst,
      int dstLength,
      int dstStart,
      int outer,
      int count,
      int inner) {
    int block = count * inner;
    for (int o = 0; o < outer; o++) {
      int from = (o * srcLength + srcStart) * inner;
      int to = (o * dstLength + dstStart) * inner;
      if (src instanceof Storage.F32 && dst instanceof Storage.F32) {
        System.arraycopy(src.floats(), from, dst.floats(), to, block);
      } else if (src instanceof Storage.F64 && dst instanceof Storage.F64) {
        System.arraycopy(src.doubles(), from, dst.doubles(), to, block);
      } else {
        for (int i = 0; i < block; i++) {
          dst.set(to + i, src.get(from + i));
        }
      }
    }
  }
}
