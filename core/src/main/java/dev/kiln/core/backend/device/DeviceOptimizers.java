package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.flag;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cpu.OptimizerKernels.AdamSettings;
import dev.kiln.core.backend.cpu.OptimizerKernels.SgdSettings;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;
import java.util.Optional;

/**
 * Launches the fused optimizer steps of {@code optimizers.cu}: SGD (with momentum, dampening,
 * Nesterov and weight decay), Adam and AdamW. Each step updates a parameter and its state in place
 * in one pass, with the formulas and settings records of the CPU's {@code OptimizerKernels}.
 *
 * <p>Every kernel here is one launch whose grid gives each element its own thread, up to {@code
 * LaunchShapes.MAX_GRID_BLOCKS} blocks, past which each thread's grid-stride loop updates several.
 * Fusing the whole update into one kernel reads and writes each array once, where a chain of
 * elementwise ops would make a pass per term.
 */
public final class DeviceOptimizers {

  private final DeviceRuntime runtime;

  /** Creates the launcher for one device. */
  public DeviceOptimizers(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /**
   * Applies one SGD step to {@code param} in place, as {@code OptimizerKernels.sgdStep}. With
   * momentum 0 pass a null {@code momentumBuffer}. Otherwise the buffer is overwritten on the first
   * step and updated after it.
   *
   * <p>Launches {@code kiln_optimizers_sgd} once, over a grid as the class documentation describes.
   */
  public void sgd(
      SgdSettings settings,
      DeviceBuffer param,
      DeviceBuffer grad,
      DeviceBuffer momentumBuffer,
      int n,
      boolean firstStep) {
    requireFloats("SGD parameter", param, n);
    requireFloats("SGD gradient", grad, n);
    requireOptional("SGD momentum buffer", momentumBuffer, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(
        "kiln_optimizers_sgd",
        gridFor(n, block),
        block,
        0,
        param,
        grad,
        Optional.ofNullable(momentumBuffer),
        n,
        (float) settings.learningRate(),
        (float) settings.momentum(),
        (float) settings.dampening(),
        (float) settings.weightDecay(),
        flag(settings.nesterov()),
        flag(firstStep));
  }

  /**
   * Applies one Adam step, or AdamW where {@code settings.decoupledDecay()} is set, to {@code
   * param} in place, as {@code OptimizerKernels.adamStep}. {@code step} is this parameter's step
   * count t, from 1. expAvg and expAvgSq are the moment estimates, zero before step 1.
   *
   * <p>Computes the bias corrections of step t here, in double, because they are the same for every
   * element: stepSize = lr / (1 - beta1^t) and sqrt(1 - beta2^t). Then launches {@code
   * kiln_optimizers_adam} or {@code kiln_optimizers_adamw} once, over a grid as the class
   * documentation describes.
   *
   * @throws IllegalArgumentException if step is less than 1
   */
  public void adam(
      AdamSettings settings,
      long step,
      DeviceBuffer param,
      DeviceBuffer grad,
      DeviceBuffer expAvg,
      DeviceBuffer expAvgSq,
      int n) {
    if (step < 1) {
      throw new IllegalArgumentException("Adam step count must be at least 1, got " + step);
    }
    requireFloats("Adam parameter", param, n);
    requireFloats("Adam gradient", grad, n);
    requireFloats("Adam first moment", expAvg, n);
    requireFloats("Adam second moment", expAvgSq, n);
    if (n == 0) {
      return;
    }
    float stepSize = (float) (settings.learningRate() / (1.0 - Math.pow(settings.beta1(), step)));
    float biasCorrection2Sqrt = (float) Math.sqrt(1.0 - Math.pow(settings.beta2(), step));
    Dim3 block = blockFor(n);
    Dim3 grid = gridFor(n, block);
    if (settings.decoupledDecay()) {
      runtime.launch(
          "kiln_optimizers_adamw",
          grid,
          block,
          0,
          param,
          grad,
          expAvg,
          expAvgSq,
          n,
          (float) settings.learningRate(),
          (float) settings.beta1(),
          (float) settings.beta2(),
          (float) settings.eps(),
          (float) settings.weightDecay(),
          stepSize,
          biasCorrection2Sqrt);
    } else {
      runtime.launch(
          "kiln_optimizers_adam",
          grid,
          block,
          0,
          param,
          grad,
          expAvg,
          expAvgSq,
          n,
          (float) settings.beta1(),
          (float) settings.beta2(),
          (float) settings.eps(),
          (float) settings.weightDecay(),
          stepSize,
          biasCorrection2Sqrt);
    }
  }
}
