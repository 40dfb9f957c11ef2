package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.flag;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;
import java.util.Arrays;

/**
 * Launches the reduction kernels of {@code reductions.cu}: sum, mean and variance over chosen
 * dimensions, and the maximum along one dimension with its position.
 *
 * <p>A reduction is described as core's {@code Reductions} describe it: the input shape and a flag
 * per dimension that marks it reduced. The output has the input's shape with every reduced
 * dimension set to 1, which in row-major order is also the shape with those dimensions removed. A
 * rank-0 input (no flags) reduces to its one element.
 *
 * <p>The kernels run one block per output element, whose threads stride over that output's reduced
 * elements and combine their partial results with warp shuffles. So the launchers size the grid by
 * the number of outputs and the block by the number of elements each output reduces.
 */
public final class DeviceReductions {

  private static final String SUM = "kiln_reductions_sum";
  private static final String VARIANCE = "kiln_reductions_variance";
  private static final String MAX = "kiln_reductions_max";

  private final DeviceRuntime runtime;

  /** Creates the launcher for one device. */
  public DeviceReductions(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /**
   * Sums {@code x} over the dimensions where {@code reduced[d]} is true, as {@code
   * ReduceKernels.sum}, into {@code out}.
   *
   * <p>Launches {@code kiln_reductions_sum} with scale 1.
   */
  public void sum(DeviceBuffer x, int[] shape, boolean[] reduced, DeviceBuffer out) {
    scaledSum(x, shape, reduced, out, 1.0);
  }

  /**
   * Averages {@code x} over the dimensions where {@code reduced[d]} is true, into {@code out}.
   *
   * <p>Launches {@code kiln_reductions_sum} with scale 1 / count, computed here from the shape, so
   * the mean costs no launch beyond the sum.
   */
  public void mean(DeviceBuffer x, int[] shape, boolean[] reduced, DeviceBuffer out) {
    long count = reducedCount(shape, reduced);
    scaledSum(x, shape, reduced, out, 1.0 / count);
  }

  /**
   * Writes {@code scale} times the sum of {@code x} over the reduced dimensions to {@code out}.
   *
   * <p>Takes the shape and flags as device ints from {@link DeviceRuntime#constants()} and launches
   * {@code kiln_reductions_sum} once, with one block per output element.
   */
  public void scaledSum(
      DeviceBuffer x, int[] shape, boolean[] reduced, DeviceBuffer out, double scale) {
    launchPerOutput(SUM, x, shape, reduced, out, (float) scale);
  }

  /**
   * Writes the variance of {@code x} over the reduced dimensions to {@code out}: the sum of squared
   * deviations from the mean, divided by count - 1 with {@code unbiased} (Bessel's correction),
   * else by count.
   *
   * <p>Launches {@code kiln_reductions_variance} once. Its block makes two passes over the
   * elements, the mean first, which loses far less precision than sum(x^2) - sum(x)^2 / count.
   */
  public void variance(
      DeviceBuffer x, int[] shape, boolean[] reduced, boolean unbiased, DeviceBuffer out) {
    launchPerOutput(VARIANCE, x, shape, reduced, out, flag(unbiased));
  }

  /**
   * Writes the maximum of {@code x} along dimension {@code dim} to {@code values}, and its position
   * along that dimension to the int buffer {@code indices}, as {@code ReduceKernels.max}: ties go
   * to the first position, and a NaN is the maximum.
   *
   * <p>Launches {@code kiln_reductions_max} once, viewing x as [outer, length, inner], with one
   * block per (outer, inner) output.
   */
  public void max(DeviceBuffer x, int[] shape, int dim, DeviceBuffer values, DeviceBuffer indices) {
    if (dim < 0 || dim >= shape.length) {
      throw new IllegalArgumentException(
          "dimension " + dim + " is out of range for shape " + Arrays.toString(shape));
    }

    long outer = 1;
    for (int d = 0; d < dim; d++) {
      outer *= shape[d];
    }
    long inner = 1;
    for (int d = dim + 1; d < shape.length; d++) {
      inner *= shape[d];
    }
    int length = shape[dim];
    if (length < 1) {
      throw new IllegalArgumentException(
          "cannot take the maximum along dimension "
              + dim
              + " of shape "
              + Arrays.toString(shape)
              + ", which has size 0");
    }

    long outputs = outer * inner;
    requireFloats("max input", x, outputs * length);
    requireFloats("max values", values, outputs);
    requireFloats("max indices", indices, outputs);
    if (outputs == 0) {
      return;
    }

    runtime.launch(
        MAX,
        Dim3.of(LaunchShapes.intSize("max outputs", outputs)),
        blockFor(length),
        0,
        x,
        values,
        indices,
        (int) outer,
        length,
        (int) inner);
  }

  /**
   * Launches a kernel with one block per output, with the shape and flags from the device's
   * constants.
   */
  private void launchPerOutput(
      String kernel,
      DeviceBuffer x,
      int[] shape,
      boolean[] reduced,
      DeviceBuffer out,
      Object lastArgument) {
    if (reduced.length != shape.length) {
      throw new IllegalArgumentException(
          String.format(
              "a reduction needs one flag per dimension, got shape %s and %d flags",
              Arrays.toString(shape), reduced.length));
    }
    if (shape.length == 0) {
      // A rank-0 tensor has one element, and reducing it over no dimensions returns that
      // element, as on the CPU. The kernels of reductions.cu take rank >= 1, so it runs as shape
      // [1] reduced over its one dimension, which reads the one input element and writes the one
      // output element.
      shape = new int[] {1};
      reduced = new boolean[] {true};
    }
    long total = 1;
    for (int size : shape) {
      total *= size;
    }
    long count = reducedCount(shape, reduced);
    long outputs = outputsOf(shape, reduced);
    requireFloats("reduction input", x, total);
    requireFloats("reduction output", out, outputs);
    if (outputs == 0) {
      return;
    }

    int[] flags = new int[shape.length];
    for (int d = 0; d < shape.length; d++) {
      flags[d] = flag(reduced[d]);
    }
    runtime.launch(
        kernel,
        Dim3.of(LaunchShapes.intSize("reduction outputs", outputs)),
        blockFor(count),
        0,
        x,
        out,
        runtime.constants().of(shape),
        runtime.constants().of(flags),
        shape.length,
        lastArgument);
  }

  /** Returns how many input elements each output reduces: the product of the reduced sizes. */
  static long reducedCount(int[] shape, boolean[] reduced) {
    long count = 1;
    for (int d = 0; d < shape.length; d++) {
      if (reduced[d]) {
        count *= shape[d];
      }
    }
    return count;
  }

  private static long outputsOf(int[] shape, boolean[] reduced) {
    long outputs = 1;
    for (int d = 0; d < shape.length; d++) {
      if (!reduced[d]) {
        outputs *= shape[d];
      }
    }
    return outputs;
  }
}
