package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;

import dev.kiln.core.backend.cpu.BatchNormKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceBatchNorm} against {@link BatchNormKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceBatchNormTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** [3, 5, 13]: m = 39 values per channel, more than one warp, in 3 strided runs. */
  private static final int N = 3;

  private static final int C = 5;
  private static final int S = 13;
  private static final int SIZE = N * C * S;
  private static final double EPS = 1e-5;
  private static final double MOMENTUM = 0.1;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void trainingForwardAndBackwardMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBatchNorm batchNorm = new DeviceBatchNorm(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, SIZE);
    float[] gamma = randomFloats(random, C);
    float[] beta = randomFloats(random, C);
    float[] runningMean = randomFloats(random, C);
    float[] runningVar = positive(randomFloats(random, C));
    float[] gradOut = randomFloats(random, SIZE);

    Storage expectedOut = f64(SIZE);
    double[] saveMean = new double[C];
    double[] saveInvStd = new double[C];
    Storage expectedRunningMean = f64(runningMean);
    Storage expectedRunningVar = f64(runningVar);
    BatchNormKernels.forwardTraining(
        f64(x),
        N,
        C,
        S,
        f64(gamma),
        f64(beta),
        EPS,
        expectedOut,
        saveMean,
        saveInvStd,
        expectedRunningMean,
        expectedRunningVar,
        MOMENTUM);
    Storage expectedGradX = f64(SIZE);
    Storage expectedGradGamma = f64(C);
    Storage expectedGradBeta = f64(C);
    BatchNormKernels.backwardTraining(
        f64(gradOut),
        f64(x),
        N,
        C,
        S,
        f64(gamma),
        saveMean,
        saveInvStd,
        expectedGradX,
        expectedGradGamma,
        expectedGradBeta);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceGamma = buffers.of(gamma);
      DeviceBuffer out = buffers.filled(SIZE);
      DeviceBuffer mean = buffers.filled(C);
      DeviceBuffer invStd = buffers.filled(C);
      DeviceBuffer deviceRunningMean = buffers.of(runningMean);
      DeviceBuffer deviceRunningVar = buffers.of(runningVar);
      batchNorm.forwardTraining(
          deviceX,
          N,
          C,
          S,
          deviceGamma,
          buffers.of(beta),
          EPS,
          MOMENTUM,
          out,
          mean,
          invStd,
          deviceRunningMean,
          deviceRunningVar);
      assertClose(device, "batch norm output", expectedOut, buffers.read(out, SIZE), SUMMED);
      assertClose(device, "saved mean", saveMean, buffers.read(mean, C), SUMMED);
      assertClose(device, "saved invStd", saveInvStd, buffers.read(invStd, C), SUMMED);
      assertClose(
          device, "running mean", expectedRunningMean, buffers.read(deviceRunningMean, C), SUMMED);
      assertClose(
          device, "running var", expectedRunningVar, buffers.read(deviceRunningVar, C), SUMMED);

      DeviceBuffer gradX = buffers.filled(SIZE);
      DeviceBuffer gradGamma = buffers.filled(C);
      DeviceBuffer gradBeta = buffers.filled(C);
      batchNorm.backwardTraining(
          buffers.of(gradOut),
          deviceX,
          N,
          C,
          S,
          deviceGamma,
          mean,
          invStd,
          EPS,
          gradX,
          gradGamma,
          gradBeta);
      assertClose(
          device, "batch norm input gradient", expectedGradX, buffers.read(gradX, SIZE), SUMMED);
      assertClose(device, "gamma gradient", expectedGradGamma, buffers.read(gradGamma, C), SUMMED);
      assertClose(device, "beta gradient", expectedGradBeta, buffers.read(gradBeta, C), SUMMED);

      // Without the affine parameters and the running statistics: null pointers on the device.
      Storage plain = f64(SIZE);
      BatchNormKernels.forwardTraining(
          f64(x),
          N,
          C,
          S,
          null,
          null,
          EPS,
          plain,
          new double[C],
          new double[C],
          null,
          null,
          MOMENTUM);
      batchNorm.forwardTraining(
          deviceX, N, C, S, null, null, EPS, MOMENTUM, out, mean, invStd, null, null);
      assertClose(device, "batch norm without affine", plain, buffers.read(out, SIZE), SUMMED);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void inferenceForwardAndBackwardMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBatchNorm batchNorm = new DeviceBatchNorm(runtime);
    Random random = new Random(DeviceTestSupport.SEED + 1);
    float[] x = randomFloats(random, SIZE);
    float[] gamma = randomFloats(random, C);
    float[] beta = randomFloats(random, C);
    float[] runningMean = randomFloats(random, C);
    float[] runningVar = positive(randomFloats(random, C));
    float[] gradOut = randomFloats(random, SIZE);

    Storage expectedOut = f64(SIZE);
    BatchNormKernels.forwardInference(
        f64(x),
        N,
        C,
        S,
        f64(gamma),
        f64(beta),
        f64(runningMean),
        f64(runningVar),
        EPS,
        expectedOut);
    Storage expectedGradX = f64(SIZE);
    Storage expectedGradGamma = f64(C);
    Storage expectedGradBeta = f64(C);
    BatchNormKernels.backwardInference(
        f64(gradOut),
        f64(x),
        N,
        C,
        S,
        f64(gamma),
        f64(runningMean),
        f64(runningVar),
        EPS,
        expectedGradX,
        expectedGradGamma,
        expectedGradBeta);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceGamma = buffers.of(gamma);
      DeviceBuffer deviceMean = buffers.of(runningMean);
      DeviceBuffer deviceVar = buffers.of(runningVar);
      DeviceBuffer out = buffers.filled(SIZE);
      batchNorm.forwardInference(
          deviceX, N, C, S, deviceGamma, buffers.of(beta), deviceMean, deviceVar, EPS, out);
      assertClose(device, "inference output", expectedOut, buffers.read(out, SIZE), ROUNDED);

      DeviceBuffer gradX = buffers.filled(SIZE);
      DeviceBuffer gradGamma = buffers.filled(C);
      DeviceBuffer gradBeta = buffers.filled(C);
      batchNorm.backwardInference(
          buffers.of(gradOut),
          deviceX,
          N,
          C,
          S,
          deviceGamma,
          deviceMean,
          deviceVar,
          EPS,
          gradX,
          gradGamma,
          gradBeta);
      assertClose(
          device, "inference input gradient", expectedGradX, buffers.read(gradX, SIZE), ROUNDED);
      assertClose(
          device,
          "inference gamma gradient",
          expectedGradGamma,
          buffers.read(gradGamma, C),
          SUMMED);
      assertClose(
          device, "inference beta gradient", expectedGradBeta, buffers.read(gradBeta, C), SUMMED);
    }
  }

  /** Maps values in [-1, 1) to variances in [0.25, 1.25). */
  private static float[] positive(float[] values) {
    for (int i = 0; i < values.length; i++) {
      values[i] = Math.abs(values[i]) + 0.25f;
    }
    return values;
  }
}
