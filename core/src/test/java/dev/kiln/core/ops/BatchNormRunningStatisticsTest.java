package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The backward pass of an evaluation-mode batch norm reads the running statistics, so it must
 * reject them once a training-mode forward pass has updated them, as PyTorch does.
 */
@ExtendWith(SkipUnusableCuda.class)
class BatchNormRunningStatisticsTest {
  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** Inputs of one batch norm over 2 channels on {@code device}, in float32. */
  private record Inputs(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight) {
    static Inputs on(Device device) {
      Tensor x =
          Tensor.of(new double[] {0.5, -1, 2, 0.25, 1.5, -0.75, 3, 1}, 2, 2, 2)
              .to(DType.FLOAT32)
              .to(device)
              .requiresGrad(true);
      Tensor runningMean = Tensor.of(new double[] {0.1, -0.2}, 2).to(DType.FLOAT32).to(device);
      Tensor runningVar = Tensor.of(new double[] {1.5, 0.5}, 2).to(DType.FLOAT32).to(device);
      Tensor weight =
          Tensor.of(new double[] {1, 2}, 2).to(DType.FLOAT32).to(device).requiresGrad(true);
      return new Inputs(x, runningMean, runningVar, weight);
    }

    Tensor forward(boolean training) {
      return Normalization.batchNorm(x, runningMean, runningVar, weight, null, training, 0.1, 1e-5);
    }
  }

  @Test
  void trainingForwardAfterEvalForwardFailsOnCpu() {
    trainingForwardAfterEvalForwardFails(Device.CPU.toString());
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void trainingForwardAfterEvalForwardFails(String device) {
    Inputs inputs = Inputs.on(Device.parse(device));
    Tensor evalLoss = inputs.forward(false).sum();

    inputs.forward(true);
    IllegalStateException error = assertThrows(IllegalStateException.class, evalLoss::backward);

    assertTrue(
        error.getMessage().startsWith("batchNorm: the running statistics"), error.getMessage());
    assertTrue(error.getMessage().contains("training mode"), error.getMessage());
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void evalForwardAfterTrainingForwardPasses(String device) {
    Inputs inputs = Inputs.on(Device.parse(device));
    inputs.forward(true);

    inputs.forward(false).sum().backward();

    // Each element's gradient is weight / sqrt(runningVar + eps). The training forward above
    // changed the running variance before this forward read it.
    double variance = inputs.runningVar.to(Device.CPU).get(0);
    assertEquals(1 / Math.sqrt(variance + 1e-5), inputs.x.grad().to(Device.CPU).get(0, 0, 0), 1e-6);
  }

  @Test
  void replacedRunningMeanFails() {
    Inputs inputs = Inputs.on(Device.CPU);
    Tensor evalLoss = inputs.forward(false).sum();

    inputs.runningMean.set(7, 0);

    assertThrows(IllegalStateException.class, evalLoss::backward);
  }

  @Test
  void closedRunningVarianceNamed() {
    Inputs inputs = Inputs.on(Device.CPU);
    Tensor evalLoss = inputs.forward(false).sum();

    inputs.runningVar.close();
    IllegalStateException error = assertThrows(IllegalStateException.class, evalLoss::backward);

    assertTrue(
        error.getMessage().startsWith("batchNorm: the running statistics"), error.getMessage());
    assertTrue(error.getMessage().contains("closed after it"), error.getMessage());
  }
}
