package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.kernels.Dim3;
import java.util.Arrays;

/**
 * Launches the elementwise kernels of {@code elementwise.cu}: unary math and activations, their
 * fused backward products, and binary arithmetic with or without broadcasting.
 *
 * <p>The kernels select the op by an int code, which is the op's position in core's {@link UnaryOp}
 * or {@link BinaryOp} enum ({@link #code(UnaryOp)}, {@link #code(BinaryOp)}). The enum constants
 * and the kernel's {@code switch} must therefore list the ops in the same order. A test compares
 * the two lists, so that reordering either one fails the build instead of silently computing
 * another op.
 *
 * <p>Every kernel here walks its elements with a grid-stride loop, and the launchers give each
 * element its own thread, up to {@code LaunchShapes.MAX_GRID_BLOCKS} blocks, past which each thread
 * takes several. Outputs may alias inputs, except for a broadcast input (see {@link
 * #binaryBroadcast}).
 */
public final class DeviceElementwise {

  private static final String UNARY = "kiln_elementwise_unary";
  private static final String UNARY_BACKWARD = "kiln_elementwise_unary_backward";
  private static final String BINARY = "kiln_elementwise_binary";
  private static final String BINARY_BROADCAST = "kiln_elementwise_binary_broadcast";

  private final DeviceRuntime runtime;

  /** Creates the launcher for one device. */
  public DeviceElementwise(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /** Returns the kernel's code of a unary op: its position in {@link UnaryOp}. */
  public static int code(UnaryOp op) {
    return op.ordinal();
  }

  /** Returns the kernel's code of a binary op: its position in {@link BinaryOp}. */
  public static int code(BinaryOp op) {
    return op.ordinal();
  }

  /**
   * Writes {@code out[i] = op(x[i], a, b)} for {@code i < n}, as {@code ElementwiseKernels.unary}.
   * {@code out} may be {@code x}.
   *
   * <p>Launches {@code kiln_elementwise_unary} once, with a thread per element up to the grid cap:
   * the op is memory bound, so the only aim is to stream x once through coalesced loads.
   *
   * @param a the op's first scalar parameter (the exponent of POW, the slope of LEAKY_RELU, ...)
   * @param b the op's second scalar parameter (the upper bound of CLAMP)
   */
  public void unary(UnaryOp op, double a, double b, DeviceBuffer x, DeviceBuffer out, int n) {
    requireFloats("unary input", x, n);
    requireFloats("unary output", out, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(UNARY, gridFor(n, block), block, 0, x, out, n, code(op), (float) a, (float) b);
  }

  /**
   * Writes {@code gradIn[i] = gradOut[i] * gradOp(saved[i], a, b)}: the backward pass of an
   * activation, where {@code gradOp} is one of the {@code *_GRAD} ops and {@code saved} is what
   * that op reads (the forward input for RELU_GRAD, LEAKY_RELU_GRAD, ELU_GRAD and CLAMP_GRAD, the
   * forward output for TANH_GRAD and SIGMOID_GRAD). {@code gradIn} may be {@code gradOut}.
   *
   * <p>RELU_GRAD selects instead of multiplying, as {@code ElementwiseKernels.reluBackward} does:
   * {@code gradIn[i] = saved[i] <= 0 ? 0 : gradOut[i]}, so a NaN or infinite gradient gives 0 where
   * the input is at most 0.
   *
   * <p>Launches {@code kiln_elementwise_unary_backward} once. The fused kernel replaces a unary
   * launch that builds the derivative and a binary MUL, which saves a pass over memory and a
   * temporary buffer.
   */
  public void unaryBackward(
      UnaryOp gradOp,
      double a,
      double b,
      DeviceBuffer gradOut,
      DeviceBuffer saved,
      DeviceBuffer gradIn,
      int n) {
    requireFloats("output gradient", gradOut, n);
    requireFloats("saved activation", saved, n);
    requireFloats("input gradient", gradIn, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(
        UNARY_BACKWARD,
        gridFor(n, block),
        block,
        0,
        gradOut,
        saved,
        gradIn,
        n,
        code(gradOp),
        (float) a,
        (float) b);
  }

  /**
   * Writes {@code out[i] = op(x[i], y[i])} for two inputs of the same shape. {@code out} may be
   * {@code x} or {@code y}.
   *
   * <p>Launches {@code kiln_elementwise_binary} once: with equal shapes no index arithmetic is
   * needed, which keeps the common case as cheap as a copy.
   */
  public void binary(BinaryOp op, DeviceBuffer x, DeviceBuffer y, DeviceBuffer out, int n) {
    requireFloats("binary input x", x, n);
    requireFloats("binary input y", y, n);
    requireFloats("binary output", out, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(BINARY, gridFor(n, block), block, 0, x, y, out, n, code(op));
  }

  /**
   * Writes {@code out = op(x, y)} with NumPy broadcasting, as {@code ElementwiseKernels.binary}:
   * the input shapes are already right-aligned to the output's rank (as {@code
   * dev.kiln.core.ops.Broadcast} prepares them), and each of their sizes is the output's or 1.
   * {@code out} must not be an input that broadcasting stretches.
   *
   * <p>Takes the output shape and both inputs' strides (0 along every stretched dimension) as one
   * small int buffer from the device's constants (see {@link DeviceRuntime#constants()}), then
   * launches {@code kiln_elementwise_binary_broadcast} once, and each thread turns its flat output
   * index into the two input offsets. Where no dimension is stretched the plain {@link #binary}
   * launch runs instead, because it needs neither the buffer nor the index arithmetic.
   *
   * @throws IllegalArgumentException if the ranks differ or a size neither matches nor is 1
   */
  public void binaryBroadcast(
      BinaryOp op,
      DeviceBuffer x,
      int[] xShape,
      DeviceBuffer y,
      int[] yShape,
      DeviceBuffer out,
      int[] outShape) {
    int rank = outShape.length;
    if (xShape.length != rank || yShape.length != rank) {
      throw new IllegalArgumentException(
          String.format(
              "broadcast shapes %s and %s must be aligned to the output's rank %d (%s)",
              Arrays.toString(xShape), Arrays.toString(yShape), rank, Arrays.toString(outShape)));
    }
    int n = numel(outShape);
    if (Arrays.equals(xShape, outShape) && Arrays.equals(yShape, outShape)) {
      binary(op, x, y, out, n);
      return;
    }
    requireFloats("broadcast input x", x, numel(xShape));
    requireFloats("broadcast input y", y, numel(yShape));
    requireFloats("broadcast output", out, n);
    if (n == 0) {
      return;
    }
    if (rank == 0) {
      binary(op, x, y, out, 1);
      return;
    }

    int[] geometry = new int[3 * rank];
    System.arraycopy(outShape, 0, geometry, 0, rank);
    System.arraycopy(broadcastStrides("x", xShape, outShape), 0, geometry, rank, rank);
    System.arraycopy(broadcastStrides("y", yShape, outShape), 0, geometry, 2 * rank, rank);
    Dim3 block = blockFor(n);
    runtime.launch(
        BINARY_BROADCAST,
        gridFor(n, block),
        block,
        0,
        x,
        y,
        out,
        runtime.constants().of(geometry),
        rank,
        n,
        code(op));
  }

  /**
   * Returns the row-major strides of {@code shape}, with 0 for every dimension of size 1 that the
   * output stretches, so that one index formula serves every input.
   */
  static int[] broadcastStrides(String name, int[] shape, int[] outShape) {
    int[] strides = new int[shape.length];
    int stride = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      if (shape[d] != outShape[d] && shape[d] != 1) {
        throw new IllegalArgumentException(
            String.format(
                "input %s of shape %s cannot broadcast to %s: dimension %d is %d, not %d or 1",
                name, Arrays.toString(shape), Arrays.toString(outShape), d, shape[d], outShape[d]));
      }
      strides[d] = shape[d] == outShape[d] ? stride : 0;
      stride *= shape[d];
    }
    return strides;
  }

  private static int numel(int[] shape) {
    long count = 1;
    for (int size : shape) {
      count *= size;
    }
    return LaunchShapes.intSize("element count of " + Arrays.toString(shape), count);
  }
}
