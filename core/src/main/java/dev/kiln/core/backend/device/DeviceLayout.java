package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.kernels.Dim3;
import java.util.Arrays;
import java.util.Optional;

/**
 * Launches the layout kernels of {@code layout.cu}: a fill, and a copy between two strided layouts
 * that carries out the shape ops on a device.
 *
 * <p>A strided layout addresses element {@code idx} of a tensor at {@code offset + sum over d of
 * idx[d] * strides[d]} in its buffer, in floats. {@link #stridedCopy} walks every index of one
 * shape and copies from a source layout to a destination layout, which covers each shape op:
 *
 * <ul>
 *   <li>permute and transpose: the source strides are the input's {@link #contiguousStrides}
 *       reordered like its dimensions, and the destination is contiguous;
 *   <li>slice: the source offset points at the first element kept, with the input's strides;
 *   <li>expand: the source stride is 0 along every dimension that grows from size 1;
 *   <li>cat: one copy per input, each written at the destination offset of its first element along
 *       the cat dimension, with the output's strides.
 * </ul>
 */
public final class DeviceLayout {

  /**
   * The largest rank {@link #stridedCopy} accepts, which is {@code LAYOUT_MAX_RANK} of layout.cu:
   * each block stages the geometry in a fixed-size shared-memory array.
   */
  public static final int MAX_RANK = 8;

  private static final String FILL = "kiln_layout_fill";
  private static final String STRIDED_COPY = "kiln_layout_strided_copy";

  private final DeviceRuntime runtime;

  /** Creates the launcher for one device. */
  public DeviceLayout(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /**
   * Writes {@code value} to the first {@code n} floats of {@code out}, as {@code zeros} and {@code
   * full} need.
   *
   * <p>Launches {@code kiln_layout_fill} once, with a thread per element up to {@link
   * LaunchShapes#MAX_GRID_BLOCKS} blocks, past which each thread writes several.
   *
   * @throws IllegalArgumentException if n is negative or {@code out} has room for fewer than n
   *     floats
   */
  public void fill(DeviceBuffer out, int n, float value) {
    LaunchShapes.intSize("fill element count", n);
    requireFloats("fill output", out, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(FILL, gridFor(n, block), block, 0, out, n, value);
  }

  /**
   * Copies every element of {@code shape} from the source layout to the destination layout: for
   * each index {@code idx}, {@code dst[dstOffset + sum idx[d] * dstStrides[d]] = src[srcOffset +
   * sum idx[d] * srcStrides[d]]}. See the class comment for the layouts of each shape op.
   *
   * <p>Takes the shape and both stride arrays as one small int buffer from the device's constants
   * (see {@link DeviceRuntime#constants()}) and launches {@code kiln_layout_strided_copy} once,
   * with a thread per element up to {@link LaunchShapes#MAX_GRID_BLOCKS} blocks, past which each
   * thread copies several. A shape with no elements launches nothing, and rank 0 copies the single
   * element at {@code srcOffset}.
   *
   * <p>Strides must be non-negative, and a source stride may be 0. The destination must address
   * each element at most once, so a destination stride of 0 is accepted only along a dimension of
   * size 1. The elements read must not overlap the elements written, because threads run in no
   * fixed order.
   *
   * <p>NOTE: a destination stride of 0 is the only repeat detected here. Other repeats (strides [1,
   * 1] for shape [2, 2]) and overlap between source and destination go undetected, and give
   * undefined results rather than an exception.
   *
   * @throws IllegalArgumentException if the ranks differ or exceed {@link #MAX_RANK}, if a size,
   *     stride or offset is negative, if a destination stride is 0 along a dimension longer than 1,
   *     or if either layout reaches past the end of its buffer
   */
  public void stridedCopy(
      DeviceBuffer src,
      int srcOffset,
      int[] srcStrides,
      DeviceBuffer dst,
      int dstOffset,
      int[] dstStrides,
      int[] shape) {
    int rank = shape.length;
    if (srcStrides.length != rank || dstStrides.length != rank) {
      throw new IllegalArgumentException(
          String.format(
              "strided copy of shape %s needs %d source and destination strides, got %s and %s",
              Arrays.toString(shape),
              rank,
              Arrays.toString(srcStrides),
              Arrays.toString(dstStrides)));
    }
    if (rank > MAX_RANK) {
      throw new IllegalArgumentException(
          String.format(
              "strided copy of shape %s has rank %d, but the kernel takes at most %d dimensions",
              Arrays.toString(shape), rank, MAX_RANK));
    }
    long count = 1;
    for (int d = 0; d < rank; d++) {
      if (shape[d] < 0) {
        throw new IllegalArgumentException(
            "strided copy shape " + Arrays.toString(shape) + " has a negative size");
      }
      count *= shape[d];
    }
    int n = LaunchShapes.intSize("element count of " + Arrays.toString(shape), count);
    requireLayout("source", src, srcOffset, srcStrides, shape, n);
    requireLayout("destination", dst, dstOffset, dstStrides, shape, n);
    if (n == 0) {
      return;
    }
    for (int d = 0; d < rank; d++) {
      if (dstStrides[d] == 0 && shape[d] > 1) {
        throw new IllegalArgumentException(
            String.format(
                "strided copy destination strides %s for shape %s write dimension %d (size %d)"
                    + " to one element: a destination stride of 0 is allowed only for size 1",
                Arrays.toString(dstStrides), Arrays.toString(shape), d, shape[d]));
      }
    }

    Dim3 block = blockFor(n);
    Dim3 grid = gridFor(n, block);
    if (rank == 0) {
      // The kernel never reads the geometry of rank 0, so no buffer is uploaded.
      runtime.launch(
          STRIDED_COPY, grid, block, 0, src, dst, Optional.empty(), 0, n, srcOffset, dstOffset);
      return;
    }
    int[] geometry = new int[3 * rank];
    System.arraycopy(shape, 0, geometry, 0, rank);
    System.arraycopy(srcStrides, 0, geometry, rank, rank);
    System.arraycopy(dstStrides, 0, geometry, 2 * rank, rank);
    DeviceBuffer deviceGeometry = runtime.constants().of(geometry);
    runtime.launch(
        STRIDED_COPY, grid, block, 0, src, dst, deviceGeometry, rank, n, srcOffset, dstOffset);
  }

  /**
   * Writes the permutation of {@code x} (of {@code shape}) to {@code out}: output dimension {@code
   * i} is input dimension {@code dims[i]}, as {@code LayoutKernels.permute}. One strided copy does
   * it: the source strides are the input's own, read in the permuted order.
   */
  public void permute(DeviceBuffer x, int[] shape, int[] dims, DeviceBuffer out) {
    int[] strides = contiguousStrides(shape);
    int[] outShape = new int[dims.length];
    int[] srcStrides = new int[dims.length];
    for (int i = 0; i < dims.length; i++) {
      outShape[i] = shape[dims[i]];
      srcStrides[i] = strides[dims[i]];
    }
    stridedCopy(x, 0, srcStrides, out, 0, contiguousStrides(outShape), outShape);
  }

  /**
   * Copies {@code count} positions along one dimension, viewing {@code src} as [outer, srcLength,
   * inner] from position {@code srcStart} and {@code dst} as [outer, dstLength, inner] from {@code
   * dstStart}, as {@code LayoutKernels.copyAlongDim}. Slicing reads at an offset; concatenation
   * writes at one.
   */
  public void copyAlongDim(
      DeviceBuffer src,
      int srcLength,
      int srcStart,
      DeviceBuffer dst,
      int dstLength,
      int dstStart,
      int outer,
      int count,
      int inner) {
    stridedCopy(
        src,
        srcStart * inner,
        new int[] {srcLength * inner, inner, 1},
        dst,
        dstStart * inner,
        new int[] {dstLength * inner, inner, 1},
        new int[] {outer, count, inner});
  }

  /**
   * Writes {@code x}, of {@code shape} aligned to the rank of {@code target}, stretched to {@code
   * target}: every dimension where {@code shape} has 1 and {@code target} more is read with stride
   * 0, so each output element along it reads the same input element.
   */
  public void expand(DeviceBuffer x, int[] shape, DeviceBuffer out, int[] target) {
    int[] strides = contiguousStrides(shape);
    for (int d = 0; d < shape.length; d++) {
      if (shape[d] != target[d]) {
        strides[d] = 0;
      }
    }
    stridedCopy(x, 0, strides, out, 0, contiguousStrides(target), target);
  }

  /**
   * Returns the row-major strides of a contiguous tensor of {@code shape}, in elements: the layout
   * of every tensor that kiln allocates, and so the usual destination strides of {@link
   * #stridedCopy}.
   */
  public static int[] contiguousStrides(int[] shape) {
    return Shapes.strides(shape);
  }

  /**
   * Checks that a non-null buffer contains every element that one side of a copy addresses: the
   * largest, {@code offset + sum (shape[d] - 1) * strides[d]}, since no stride is negative.
   */
  private static void requireLayout(
      String side, DeviceBuffer buffer, int offset, int[] strides, int[] shape, int n) {
    if (buffer == null) {
      throw new IllegalArgumentException("strided copy " + side + " buffer must not be null");
    }
    if (offset < 0) {
      throw new IllegalArgumentException(
          "strided copy " + side + " offset must not be negative, got " + offset);
    }
    for (int stride : strides) {
      if (stride < 0) {
        throw new IllegalArgumentException(
            String.format(
                "strided copy %s strides %s must not be negative", side, Arrays.toString(strides)));
      }
    }
    if (n == 0) {
      return;
    }
    long last = offset;
    for (int d = 0; d < shape.length; d++) {
      last += (long) (shape[d] - 1) * strides[d];
    }
    long floats = buffer.bytes() / Float.BYTES;
    if (last >= floats) {
      throw new IllegalArgumentException(
          String.format(
              "strided copy %s of shape %s with strides %s and offset %d reaches float index %d,"
                  + " but the %s buffer holds only %d floats",
              side, Arrays.toString(shape), Arrays.toString(strides), offset, last, side, floats));
    }
  }
}
