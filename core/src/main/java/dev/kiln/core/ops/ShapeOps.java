package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.ElementwiseKernels;
import dev.kiln.core.backend.cpu.LayoutKernels;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.Arrays;

/**
 * Shape operations. Tensors are always contiguous, so {@code reshape} shares storage with its
 * input, while {@code permute}, {@code slice}, {@code cat} and {@code expand} copy. The one
 * exception is an {@code expand} to the input's own shape, which returns the input. The copies run
 * on the tensor's device: {@link LayoutKernels} on the CPU, {@code DeviceLayout} elsewhere. On the
 * CPU, {@code expand} copies with {@link ElementwiseKernels#binary} instead, as a broadcast add of
 * -0.0.
 */
public final class ShapeOps {
  private ShapeOps() {}

  /**
   * Returns a tensor with the same elements in a new shape, sharing storage. One size may be -1,
   * which is inferred from the others.
   */
  public static Tensor reshape(Tensor x, int... shape) {
    int[] resolved = resolveShape(x, shape);
    int[] inputShape = x.shape();
    Tensor out = new Tensor(x.storage(), resolved, x.device());
    return Autograd.record("reshape", out, g -> new Tensor[] {g.reshape(inputShape)}, x);
  }

  private static int[] resolveShape(Tensor x, int[] shape) {
    int[] resolved = shape.clone();
    int inferred = -1;
    int known = 1;
    for (int d = 0; d < shape.length; d++) {
      if (shape[d] == -1) {
        if (inferred >= 0) {
          throw new IllegalArgumentException(
              "reshape: only one size may be -1, got " + Arrays.toString(shape));
        }
        inferred = d;
      } else if (shape[d] < 0) {
        throw new IllegalArgumentException("reshape: invalid size in " + Arrays.toString(shape));
      } else {
        known *= shape[d];
      }
    }
    if (inferred >= 0) {
      if (known == 0 || x.numel() % known != 0) {
        throw new IllegalArgumentException(
            "reshape: cannot infer -1 in "
                + Arrays.toString(shape)
                + " for "
                + x.numel()
                + " elements of shape "
                + Shapes.format(x.shape()));
      }
      resolved[inferred] = x.numel() / known;
    }
    if (Shapes.numel(resolved) != x.numel()) {
      throw new IllegalArgumentException(
          "reshape: shape "
              + Shapes.format(x.shape())
              + " ("
              + x.numel()
              + " elements) cannot become "
              + Arrays.toString(shape)
              + " ("
              + Shapes.numel(resolved)
              + " elements)");
    }
    return resolved;
  }

  /** Merges dimensions {@code startDim..endDim} (inclusive) into one. */
  public static Tensor flatten(Tensor x, int startDim, int endDim) {
    int[] shape = x.shape();
    if (shape.length == 0) {
      return reshape(x, 1);
    }
    int start = Shapes.normalizeDim(startDim, shape.length, "flatten", shape);
    int end = Shapes.normalizeDim(endDim, shape.length, "flatten", shape);
    if (start > end) {
      throw new IllegalArgumentException(
          "flatten: start dimension " + startDim + " comes after end dimension " + endDim);
    }
    int[] result = new int[shape.length - (end - start)];
    int merged = 1;
    for (int d = start; d <= end; d++) {
      merged *= shape[d];
    }
    System.arraycopy(shape, 0, result, 0, start);
    result[start] = merged;
    System.arraycopy(shape, end + 1, result, start + 1, shape.length - end - 1);
    return reshape(x, result);
  }

  /** Inserts a dimension of size 1 at {@code dim}. */
  public static Tensor unsqueeze(Tensor x, int dim) {
    int[] shape = x.shape();
    int axis = Shapes.normalizeDim(dim, shape.length + 1, "unsqueeze", shape);
    int[] result = new int[shape.length + 1];
    System.arraycopy(shape, 0, result, 0, axis);
    result[axis] = 1;
    System.arraycopy(shape, axis, result, axis + 1, shape.length - axis);
    return reshape(x, result);
  }

  /** Removes dimension {@code dim}, which must have size 1. */
  public static Tensor squeeze(Tensor x, int dim) {
    int[] shape = x.shape();
    int axis = Shapes.normalizeDim(dim, shape.length, "squeeze", shape);
    if (shape[axis] != 1) {
      throw new IllegalArgumentException(
          "squeeze: dimension " + dim + " of shape " + Shapes.format(shape) + " is not 1");
    }
    int[] result = new int[shape.length - 1];
    System.arraycopy(shape, 0, result, 0, axis);
    System.arraycopy(shape, axis + 1, result, axis, shape.length - axis - 1);
    return reshape(x, result);
  }

  /** Reorders dimensions: output dimension {@code i} is input dimension {@code dims[i]}. */
  public static Tensor permute(Tensor x, int... dims) {
    int[] shape = x.shape();
    if (dims.length != shape.length) {
      throw new IllegalArgumentException(
          "permute: "
              + Arrays.toString(dims)
              + " must list each of the "
              + shape.length
              + " dimensions of shape "
              + Shapes.format(shape)
              + " once");
    }
    int[] order = new int[dims.length];
    int[] inverse = new int[dims.length];
    boolean[] seen = new boolean[dims.length];
    int[] outShape = new int[dims.length];
    for (int i = 0; i < dims.length; i++) {
      order[i] = Shapes.normalizeDim(dims[i], shape.length, "permute", shape);
      if (seen[order[i]]) {
        throw new IllegalArgumentException(
            "permute: dimension "
                + dims[i]
                + " appears twice in "
                + Arrays.toString(dims)
                + " for shape "
                + Shapes.format(shape));
      }
      seen[order[i]] = true;
      inverse[order[i]] = i;
      outShape[i] = shape[order[i]];
    }
    Tensor out = Tensor.empty(x.dtype(), x.device(), outShape);
    if (x.device().isCpu()) {
      LayoutKernels.permute(x.storage(), shape, order, out.storage());
    } else {
      kernelsOf(x).layout().permute(bufferOf(x), shape, order, bufferOf(out));
    }
    return Autograd.record("permute", out, g -> new Tensor[] {permute(g, inverse)}, x);
  }

  /** Swaps two dimensions. */
  public static Tensor transpose(Tensor x, int dim0, int dim1) {
    int[] shape = x.shape();
    int[] order = new int[shape.length];
    for (int d = 0; d < order.length; d++) {
      order[d] = d;
    }
    int a = Shapes.normalizeDim(dim0, shape.length, "transpose", shape);
    int b = Shapes.normalizeDim(dim1, shape.length, "transpose", shape);
    order[a] = b;
    order[b] = a;
    return permute(x, order);
  }

  /**
   * Returns the elements with index {@code start <= i < end} along {@code dim}, as a copy. Negative
   * bounds count from the end, and bounds beyond the size are clipped, as in Python.
   */
  public static Tensor slice(Tensor x, int dim, int start, int end) {
    int[] shape = x.shape();
    int axis = Shapes.normalizeDim(dim, shape.length, "slice", shape);
    int length = shape[axis];
    int from = clip(start < 0 ? start + length : start, length);
    int to = clip(end < 0 ? end + length : end, length);
    int count = Math.max(0, to - from);
    int[] outShape = shape.clone();
    outShape[axis] = count;
    Tensor out = Tensor.empty(x.dtype(), x.device(), outShape);
    int outer = outerSize(shape, axis);
    int inner = innerSize(shape, axis);
    copyAlongDim(x, length, from, out, count, 0, outer, count, inner);
    // Backward saves the input's dtype, device and shape, not the input itself.
    DType dtype = x.dtype();
    Device device = x.device();
    return Autograd.record(
        "slice",
        out,
        g -> {
          Tensor grad = Tensor.zeros(dtype, device, shape);
          copyAlongDim(g, count, 0, grad, length, from, outer, count, inner);
          return new Tensor[] {grad};
        },
        x);
  }

  /** Joins tensors along {@code dim}; all other sizes must match. */
  public static Tensor cat(int dim, Tensor... tensors) {
    if (tensors.length == 0) {
      throw new IllegalArgumentException("cat: needs at least one tensor");
    }
    int[] first = tensors[0].shape();
    int axis = Shapes.normalizeDim(dim, first.length, "cat", first);
    int total = 0;
    for (Tensor t : tensors) {
      Checks.sameDTypeAndDevice("cat", tensors[0], t);
      int[] shape = t.shape();
      boolean compatible = shape.length == first.length;
      for (int d = 0; compatible && d < shape.length; d++) {
        compatible = d == axis || shape[d] == first[d];
      }
      if (!compatible) {
        throw new IllegalArgumentException(
            "cat: shapes "
                + Shapes.format(first)
                + " and "
                + Shapes.format(shape)
                + " differ outside dimension "
                + dim);
      }
      total += shape[axis];
    }
    int[] outShape = first.clone();
    outShape[axis] = total;
    Tensor out = Tensor.empty(tensors[0].dtype(), tensors[0].device(), outShape);
    int outer = outerSize(first, axis);
    int inner = innerSize(first, axis);
    int[] starts = new int[tensors.length];
    int position = 0;
    for (int i = 0; i < tensors.length; i++) {
      int count = tensors[i].size(axis);
      starts[i] = position;
      copyAlongDim(tensors[i], count, 0, out, total, position, outer, count, inner);
      position += count;
    }
    int totalLength = total;
    return Autograd.record(
        "cat",
        out,
        g -> {
          Tensor[] grads = new Tensor[tensors.length];
          for (int i = 0; i < tensors.length; i++) {
            grads[i] = slice(g, axis, starts[i], starts[i] + tensors[i].size(axis));
          }
          return grads;
        },
        tensors);
  }

  /**
   * Repeats size-1 dimensions (and adds leading ones) to reach {@code shape}, as a copy. Returns
   * {@code x} itself, not a copy, when its shape already is {@code shape}.
   */
  public static Tensor expand(Tensor x, int... shape) {
    int[] target = Broadcast.shape("expand", x.shape(), shape);
    if (!Arrays.equals(target, shape)) {
      throw new IllegalArgumentException(
          "expand: shape "
              + Shapes.format(x.shape())
              + " cannot expand to "
              + Arrays.toString(shape));
    }
    int[] inputShape = x.shape();
    if (Arrays.equals(inputShape, target)) {
      return x;
    }
    Tensor out = Tensor.empty(x.dtype(), x.device(), target);
    int[] aligned = Broadcast.alignRank(inputShape, target.length);
    if (!x.device().isCpu()) {
      kernelsOf(x).layout().expand(bufferOf(x), aligned, bufferOf(out), target);
      return Autograd.record(
          "expand", out, g -> new Tensor[] {Broadcast.reduceTo(g, inputShape)}, x);
    }
    // Adding -0.0 returns every value unchanged, while +0.0 would turn -0.0 into +0.0.
    Tensor zero = Tensor.full(-0.0, x.dtype());
    int[] scalarShape = new int[target.length];
    Arrays.fill(scalarShape, 1);
    ElementwiseKernels.binary(
        BinaryOp.ADD, x.storage(), aligned, zero.storage(), scalarShape, out.storage(), target);
    return Autograd.record("expand", out, g -> new Tensor[] {Broadcast.reduceTo(g, inputShape)}, x);
  }

  /**
   * Copies blocks along one dimension, viewing both tensors as [outer, length, inner], as {@link
   * LayoutKernels#copyAlongDim}, on the tensors' device.
   */
  private static void copyAlongDim(
      Tensor src,
      int srcLength,
      int srcStart,
      Tensor dst,
      int dstLength,
      int dstStart,
      int outer,
      int count,
      int inner) {
    if (src.device().isCpu()) {
      LayoutKernels.copyAlongDim(
          src.storage(),
          srcLength,
          srcStart,
          dst.storage(),
          dstLength,
          dstStart,
          outer,
          count,
          inner);
    } else {
      kernelsOf(src)
          .layout()
          .copyAlongDim(
              bufferOf(src),
              srcLength,
              srcStart,
              bufferOf(dst),
              dstLength,
              dstStart,
              outer,
              count,
              inner);
    }
  }

  private static int clip(int index, int length) {
    return Math.max(0, Math.min(index, length));
  }

  static int outerSize(int[] shape, int axis) {
    int size = 1;
    for (int d = 0; d < axis; d++) {
      size *= shape[d];
    }
    return size;
  }

  static int innerSize(int[] shape, int axis) {
    int size = 1;
    for (int d = axis + 1; d < shape.length; d++) {
      size *= shape[d];
    }
    return size;
  }
}
