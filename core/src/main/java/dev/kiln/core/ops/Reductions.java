package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.ReduceKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/** Reductions over chosen dimensions: sum, mean, max with argmax, and variance. */
public final class Reductions {
  private Reductions() {}

  /** Values and positions of a maximum along one dimension. */
  public record MaxResult(Tensor values, int[] indices, int[] indexShape) {

    /** Returns the position of the maximum for one output element, by flat index. */
    public int index(int flat) {
      return indices[flat];
    }
  }

  /** Sums over the marked dimensions, keeping them with size 1. Used by broadcasting's backward. */
  public static Tensor sumKeepDims(Tensor x, boolean[] reduced) {
    int[] outShape = x.shape();
    for (int d = 0; d < outShape.length; d++) {
      if (reduced[d]) {
        outShape[d] = 1;
      }
    }
    Tensor out = Tensor.empty(x.dtype(), x.device(), outShape);
    if (x.device().isCpu()) {
      ReduceKernels.sum(x.storage(), x.shape(), reduced, out.storage());
    } else {
      kernelsOf(x).reductions().sum(bufferOf(x), x.shape(), reduced, bufferOf(out));
    }
    int[] inputShape = x.shape();
    return Autograd.record("sum", out, g -> new Tensor[] {g.expand(inputShape)}, x);
  }

  /** Sums every element into a scalar. */
  public static Tensor sum(Tensor x) {
    return sum(x, allDims(x), false);
  }

  /**
   * Sums over {@code dims} (negative values count from the end). With {@code keepDim} the reduced
   * dimensions stay with size 1; otherwise they are removed.
   */
  public static Tensor sum(Tensor x, int[] dims, boolean keepDim) {
    boolean[] reduced = markDims("sum", x, dims);
    Tensor kept = sumKeepDims(x, reduced);
    return keepDim ? kept : kept.reshape(dropDims(x.shape(), reduced));
  }

  /** Mean of every element. */
  public static Tensor mean(Tensor x) {
    return mean(x, allDims(x), false);
  }

  /** Mean over {@code dims}. */
  public static Tensor mean(Tensor x, int[] dims, boolean keepDim) {
    boolean[] reduced = markDims("mean", x, dims);
    int count = 1;
    for (int d = 0; d < reduced.length; d++) {
      count *= reduced[d] ? x.size(d) : 1;
    }
    return sum(x, dims, keepDim).div(count);
  }

  /**
   * Variance over {@code dims}: the mean squared deviation, times n/(n-1) when {@code unbiased}
   * (Bessel's correction, PyTorch's default for {@code var}).
   */
  public static Tensor variance(Tensor x, int[] dims, boolean unbiased, boolean keepDim) {
    boolean[] reduced = markDims("variance", x, dims);
    int count = 1;
    for (int d = 0; d < reduced.length; d++) {
      count *= reduced[d] ? x.size(d) : 1;
    }
    Tensor deviation = x.sub(mean(x, dims, true));
    Tensor squares = sum(deviation.mul(deviation), dims, keepDim);
    // With no elements, Bessel's n - 1 is -1 and would give -0.0. PyTorch 1.13 gives NaN for both
    // forms, as 0 / 0 does for the biased one.
    int divisor = unbiased ? Math.max(0, count - 1) : count;
    return squares.div(divisor);
  }

  /**
   * Maximum along {@code dim}, with the position of each maximum (the first one on ties). The
   * gradient flows only to those positions.
   */
  public static MaxResult max(Tensor x, int dim, boolean keepDim) {
    int[] shape = x.shape();
    if (shape.length == 0) {
      // PyTorch 1.13 accepts dim 0 or -1 on a scalar and returns the scalar with index 0, without
      // adding a dimension for keepDim.
      Shapes.normalizeDim(dim, 1, "max", shape);
      return max(x.reshape(1), 0, false);
    }
    int axis = Shapes.normalizeDim(dim, shape.length, "max", shape);
    if (shape[axis] == 0) {
      throw new IllegalArgumentException(
          "max: dimension "
              + dim
              + " of shape "
              + Shapes.format(shape)
              + " is empty, so it has no maximum");
    }
    boolean[] reduced = new boolean[shape.length];
    reduced[axis] = true;
    int[] removed = dropDims(shape, reduced);
    Tensor values = Tensor.empty(x.dtype(), x.device(), removed);
    int[] indices = new int[values.numel()];
    if (x.device().isCpu()) {
      ReduceKernels.max(x.storage(), shape, axis, values.storage(), indices);
    } else {
      deviceMax(x, axis, values, indices);
    }

    Device device = x.device();
    Autograd.record(
        "max",
        values,
        upstream -> {
          // The scatter runs on the CPU: max is not on a training path, so one round trip is
          // cheaper to read than another kernel.
          Tensor g = upstream.to(Device.CPU);
          Tensor grad = Tensor.zeros(x.dtype(), shape);
          int inner = 1;
          for (int d = axis + 1; d < shape.length; d++) {
            inner *= shape[d];
          }
          int length = shape[axis];
          for (int flat = 0; flat < indices.length; flat++) {
            int outerIndex = flat / inner;
            int innerIndex = flat % inner;
            int source = (outerIndex * length + indices[flat]) * inner + innerIndex;
            grad.storage().add(source, g.storage().get(flat));
          }
          return new Tensor[] {grad.to(device)};
        },
        x);
    int[] keptShape = shape.clone();
    keptShape[axis] = 1;
    Tensor result = keepDim ? values.reshape(keptShape) : values;
    return new MaxResult(result, indices, keepDim ? keptShape : removed);
  }

  /** Runs the max kernel on x's device and copies the positions back to {@code indices}. */
  private static void deviceMax(Tensor x, int axis, Tensor values, int[] indices) {
    DeviceRuntime runtime = kernelsOf(x).runtime();
    DeviceBuffer positions = runtime.allocateFloats(Math.max(1, indices.length));
    try {
      kernelsOf(x).reductions().max(bufferOf(x), x.shape(), axis, bufferOf(values), positions);
      if (indices.length > 0) {
        runtime.copyToHost(positions, indices);
      }
    } finally {
      runtime.free(positions);
    }
  }

  /** Maximum of all elements. */
  public static Tensor max(Tensor x) {
    return max(x.reshape(x.numel()), 0, false).values();
  }

  static int[] allDims(Tensor x) {
    int[] dims = new int[x.dim()];
    for (int d = 0; d < dims.length; d++) {
      dims[d] = d;
    }
    return dims;
  }

  /**
   * Marks the dimensions in {@code dims} for reduction. A scalar accepts dimension 0 or -1, as in
   * PyTorch 1.13, and reducing over it leaves the scalar unchanged, so nothing is marked.
   */
  private static boolean[] markDims(String op, Tensor x, int[] dims) {
    int[] shape = x.shape();
    boolean[] reduced = new boolean[Math.max(1, shape.length)];
    for (int dim : dims) {
      int axis = Shapes.normalizeDim(dim, reduced.length, op, shape);
      if (reduced[axis]) {
        throw new IllegalArgumentException(
            op + ": dimension " + dim + " is listed twice for shape " + Shapes.format(shape));
      }
      reduced[axis] = true;
    }
    return shape.length == 0 ? new boolean[0] : reduced;
  }

  private static int[] dropDims(int[] shape, boolean[] reduced) {
    int kept = 0;
    for (boolean r : reduced) {
      kept += r ? 0 : 1;
    }
    int[] result = new int[kept];
    int next = 0;
    for (int d = 0; d < shape.length; d++) {
      if (!reduced[d]) {
        result[next++] = shape[d];
      }
    }
    return result;
  }
}
