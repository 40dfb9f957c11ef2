package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.ops.Reduction;
import dev.kiln.kernels.Dim3;
import java.util.Optional;

/**
 * Launches the regression losses of {@code losses.cu}, MSE, L1, SmoothL1 and Wing, reduced to one
 * number on the device, with the gradient written in the same pass.
 *
 * <p>Each loss is a sum of f(d) over the elements, d = x - t, as in the CPU's {@code LossKernels}.
 * A loss takes two launches. The loss kernel has each block add up its threads' terms and write one
 * partial sum per block. Then {@code kiln_reductions_sum} adds the partial sums and multiplies by 1
 * / n for a mean. Per-block partial sums instead of one atomic total keep the result the same on
 * every run, because atomics add in whatever order the blocks finish. A call without a loss buffer,
 * as a backward pass makes for the gradient alone, skips the second launch.
 *
 * <p>The gradient, where a gradient buffer is given, is that of the reduced loss: grad[i] = factor
 * * f'(d[i]) with factor 1 / n for {@link Reduction#MEAN} and 1 for {@link Reduction#SUM}. The
 * gradient with respect to t is its negation.
 */
public final class DeviceLosses {

  /**
   * Most blocks of a loss launch, and so most partial sums. The kernels' grid-stride loop lets a
   * capped grid cover any n. 1024 blocks of 256 threads are about one full wave of an H200, as
   * {@link LaunchShapes#MAX_GRID_BLOCKS} explains.
   */
  static final int MAX_BLOCKS = 1024;

  private final DeviceRuntime runtime;
  private final DeviceReductions reductions;

  /** Creates the launcher for one device. */
  public DeviceLosses(DeviceRuntime runtime) {
    this.runtime = runtime;
    this.reductions = new DeviceReductions(runtime);
  }

  /**
   * Writes the reduced squared error, f(d) = d^2, to {@code loss[0]} unless {@code loss} is null,
   * and its gradient 2d * factor to {@code grad} unless it is null.
   *
   * <p>Launches {@code kiln_losses_mse}, then {@code kiln_reductions_sum} over the partial sums.
   */
  public void mse(
      DeviceBuffer x,
      DeviceBuffer t,
      int n,
      Reduction reduction,
      DeviceBuffer loss,
      DeviceBuffer grad) {
    run("kiln_losses_mse", x, t, n, reduction, loss, grad);
  }

  /**
   * Writes the reduced absolute error, f(d) = |d|, to {@code loss[0]} unless {@code loss} is null,
   * and its gradient sign(d) * factor (0 at d = 0) to {@code grad} unless it is null.
   *
   * <p>Launches {@code kiln_losses_l1}, then {@code kiln_reductions_sum} over the partial sums.
   */
  public void l1(
      DeviceBuffer x,
      DeviceBuffer t,
      int n,
      Reduction reduction,
      DeviceBuffer loss,
      DeviceBuffer grad) {
    run("kiln_losses_l1", x, t, n, reduction, loss, grad);
  }

  /**
   * Writes the reduced smooth L1 loss, f(d) = 0.5 d^2 / beta where |d| &lt; beta, else |d| - 0.5
   * beta, to {@code loss[0]} unless {@code loss} is null, and its gradient to {@code grad} unless
   * it is null. beta = 0 is L1.
   *
   * <p>Launches {@code kiln_losses_smooth_l1}, then {@code kiln_reductions_sum}.
   *
   * @throws IllegalArgumentException if beta is negative or not finite
   */
  public void smoothL1(
      DeviceBuffer x,
      DeviceBuffer t,
      int n,
      double beta,
      Reduction reduction,
      DeviceBuffer loss,
      DeviceBuffer grad) {
    if (!(beta >= 0 && Double.isFinite(beta))) {
      throw new IllegalArgumentException("smooth L1 beta must be finite and >= 0, got " + beta);
    }
    run("kiln_losses_smooth_l1", x, t, n, reduction, loss, grad, (float) beta);
  }

  /**
   * Writes the reduced Wing loss, f(d) = w ln(1 + |d| / epsilon) where |d| &lt; w, else |d| - C, to
   * {@code loss[0]} unless {@code loss} is null, and its gradient to {@code grad} unless it is
   * null.
   *
   * <p>Launches {@code kiln_losses_wing}, then {@code kiln_reductions_sum}.
   *
   * @throws IllegalArgumentException if w or epsilon is not finite and positive
   */
  public void wing(
      DeviceBuffer x,
      DeviceBuffer t,
      int n,
      double w,
      double epsilon,
      Reduction reduction,
      DeviceBuffer loss,
      DeviceBuffer grad) {
    if (!(w > 0 && epsilon > 0 && Double.isFinite(w) && Double.isFinite(epsilon))) {
      throw new IllegalArgumentException(
          "Wing loss needs finite w > 0 and epsilon > 0, got w=" + w + ", epsilon=" + epsilon);
    }
    run("kiln_losses_wing", x, t, n, reduction, loss, grad, (float) w, (float) epsilon);
  }

  /**
   * Runs a loss kernel into per-block partial sums, then reduces them into loss[0] where {@code
   * loss} is not null. The kernel's parameters are (x, t, partialSums, grad, n, lossParameters...,
   * scale).
   *
   * @throws IllegalArgumentException if n is below 1, a buffer is too small, or both {@code loss}
   *     and {@code grad} are null
   */
  private void run(
      String kernel,
      DeviceBuffer x,
      DeviceBuffer t,
      int n,
      Reduction reduction,
      DeviceBuffer loss,
      DeviceBuffer grad,
      Object... lossParameters) {
    if (n < 1) {
      throw new IllegalArgumentException("a loss needs at least one element, got n = " + n);
    }
    requireFloats("loss prediction", x, n);
    requireFloats("loss target", t, n);
    requireOptional("loss output", loss, 1);
    requireOptional("loss gradient", grad, n);
    if (loss == null && grad == null) {
      throw new IllegalArgumentException(
          "a loss launch needs a loss buffer, a gradient buffer or both, got neither");
    }
    double factor = reduction == Reduction.MEAN ? 1.0 / n : 1.0;

    Dim3 block = LaunchShapes.blockFor(n);
    int blocks = Math.min(MAX_BLOCKS, Dim3.blocksFor(n, block.x()));
    Object[] args = new Object[6 + lossParameters.length];
    DeviceBuffer partialSums = runtime.allocateFloats(blocks);
    try {
      args[0] = x;
      args[1] = t;
      args[2] = partialSums;
      args[3] = Optional.ofNullable(grad);
      args[4] = n;
      System.arraycopy(lossParameters, 0, args, 5, lossParameters.length);
      args[args.length - 1] = (float) factor;
      runtime.launch(kernel, Dim3.of(blocks), block, 0, args);
      if (loss != null) {
        reductions.scaledSum(partialSums, new int[] {blocks}, new boolean[] {true}, loss, factor);
      }
    } finally {
      runtime.free(partialSums);
    }
  }
}
