package dev.kiln.core.backend.cpu;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;

/** CPU reference kernels for elementwise ops, with NumPy broadcasting for binary ops. */
public final class ElementwiseKernels {
  private ElementwiseKernels() {}

  /**
   * Element count from which a loop with a few operations per element is split over the pool: the
   * float32 unary ops and ReLU gradient here, the optimizer updates of {@link OptimizerKernels},
   * and the bias and bias gradient of {@link Conv2dKernels}. Below it a chunk takes a few
   * microseconds, about what handing it to another thread costs: an estimate, not measured.
   */
  static final int PARALLEL_MIN_ELEMENTS = 1 << 16;

  /** Writes {@code op(x[i], a, b)} to {@code out[i]}; {@code out} may be {@code x}. */
  public static void unary(UnaryOp op, double a, double b, Storage x, Storage out) {
    int size = x.size();
    if (x instanceof Storage.F32 && out instanceof Storage.F32) {
      float[] in = x.floats();
      float[] result = out.floats();
      if (FastElementwise.hasUnary(op)) {
        // Each chunk writes only its own range of the output.
        CpuParallel.forEachChunk(
            size,
            size,
            PARALLEL_MIN_ELEMENTS,
            (chunk, start, end) -> FastElementwise.unary(op, a, in, result, start, end));
        return;
      }
      for (int i = 0; i < size; i++) {
        result[i] = (float) op.apply(in[i], a, b);
      }
      return;
    }
    for (int i = 0; i < size; i++) {
      out.set(i, op.apply(x.get(i), a, b));
    }
  }

  /**
   * Writes the ReLU gradient {@code x[i] <= 0 ? 0 : grad[i]} to {@code out[i]}: +0 where x is at
   * most 0, whatever the gradient, as PyTorch's {@code threshold_backward} gives, and the gradient
   * elsewhere, NaN inputs included. All three storages must have the same size.
   */
  public static void reluBackward(Storage grad, Storage x, Storage out) {
    int size = out.size();
    if (grad.size() != size || x.size() != size) {
      throw new IllegalArgumentException(
          "relu backward: gradient, input and output must have the same size, got "
              + grad.size()
              + ", "
              + x.size()
              + " and "
              + size);
    }
    if (grad instanceof Storage.F32 && x instanceof Storage.F32 && out instanceof Storage.F32) {
      float[] g = grad.floats();
      float[] in = x.floats();
      float[] result = out.floats();
      // Each chunk writes only its own range of the output.
      CpuParallel.forEachChunk(
          size,
          size,
          PARALLEL_MIN_ELEMENTS,
          (chunk, start, end) -> FastElementwise.reluBackward(g, in, result, start, end));
      return;
    }
    for (int i = 0; i < size; i++) {
      out.set(i, x.get(i) <= 0 ? 0.0 : grad.get(i));
    }
  }

  /**
   * Writes {@code op(x, y)} to {@code out}, broadcasting both inputs to {@code outShape}. The input
   * shapes must already be right-aligned to the output's rank and each of their sizes be either the
   * output's size or 1 ({@link dev.kiln.core.ops.Broadcast} prepares them).
   */
  public static void binary(
      BinaryOp op, Storage x, int[] xShape, Storage y, int[] yShape, Storage out, int[] outShape) {
    int size = out.size();
    if (x.size() == size && y.size() == size) {
      sameShape(op, x, y, out);
      return;
    }
    if (y.size() == 1 && x.size() == size) {
      double scalar = y.get(0);
      if (x instanceof Storage.F32 && out instanceof Storage.F32) {
        float[] xs = x.floats();
        float[] result = out.floats();
        for (int i = 0; i < size; i++) {
          result[i] = (float) op.apply(xs[i], scalar);
        }
        return;
      }
      for (int i = 0; i < size; i++) {
        out.set(i, op.apply(x.get(i), scalar));
      }
      return;
    }
    int rank = outShape.length;
    int[] xStrides = broadcastStrides(xShape, outShape);
    int[] yStrides = broadcastStrides(yShape, outShape);
    int[] index = new int[rank];
    int xOffset = 0;
    int yOffset = 0;
    for (int i = 0; i < size; i++) {
      out.set(i, op.apply(x.get(xOffset), y.get(yOffset)));
      // Advance the multi-index like an odometer, moving both input offsets with it.
      for (int d = rank - 1; d >= 0; d--) {
        index[d]++;
        xOffset += xStrides[d];
        yOffset += yStrides[d];
        if (index[d] < outShape[d]) {
          break;
        }
        xOffset -= xStrides[d] * outShape[d];
        yOffset -= yStrides[d] * outShape[d];
        index[d] = 0;
      }
    }
  }

  private static void sameShape(BinaryOp op, Storage x, Storage y, Storage out) {
    int size = out.size();
    if (x instanceof Storage.F32 && y instanceof Storage.F32 && out instanceof Storage.F32) {
      float[] xs = x.floats();
      float[] ys = y.floats();
      float[] result = out.floats();
      if (FastElementwise.binary(op, xs, ys, result, size)) {
        return;
      }
      for (int i = 0; i < size; i++) {
        result[i] = (float) op.apply(xs[i], ys[i]);
      }
      return;
    }
    for (int i = 0; i < size; i++) {
      out.set(i, op.apply(x.get(i), y.get(i)));
    }
  }

  /** Strides of {@code shape} inside {@code outShape}, with 0 where a size-1 dimension repeats. */
  static int[] broadcastStrides(int[] shape, int[] outShape) {
    int[] strides = Shapes.strides(shape);
    for (int d = 0; d < shape.length; d++) {
      if (shape[d] == 1 && outShape[d] != 1) {
        strides[d] = 0;
      }
    }
    return strides;
  }
}
