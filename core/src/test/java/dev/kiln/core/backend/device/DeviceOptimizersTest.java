package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.CANCELLED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;

import dev.kiln.core.backend.cpu.OptimizerKernels;
import dev.kiln.core.backend.cpu.OptimizerKernels.AdamSettings;
import dev.kiln.core.backend.cpu.OptimizerKernels.SgdSettings;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tests {@link DeviceOptimizers} against {@link OptimizerKernels} run in float64, over two steps,
 * so that the state written by the first step is read by the second. A step subtracts an update
 * from the parameter, so the results are compared with {@link DeviceTestSupport#CANCELLED}.
 */
@ExtendWith(SkipUnusableCuda.class)
class DeviceOptimizersTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  private static final int N = 77;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sgdMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceOptimizers optimizers = new DeviceOptimizers(runtime);
    SgdSettings[] variants = {
      new SgdSettings(0.1, 0.0, 0.0, false, 0.0),
      new SgdSettings(0.1, 0.9, 0.1, false, 0.01),
      new SgdSettings(0.05, 0.9, 0.0, true, 0.001)
    };
    Random random = new Random(DeviceTestSupport.SEED);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (SgdSettings settings : variants) {
        float[] param = randomFloats(random, N);
        Storage expectedParam = f64(param);
        boolean momentum = settings.momentum() != 0;
        Storage expectedBuffer = momentum ? f64(N) : null;
        DeviceBuffer deviceParam = buffers.of(param);
        DeviceBuffer deviceBuffer = momentum ? buffers.filled(N) : null;
        for (int step = 1; step <= 2; step++) {
          float[] grad = randomFloats(random, N);
          OptimizerKernels.sgdStep(settings, expectedParam, f64(grad), expectedBuffer, step == 1);
          optimizers.sgd(settings, deviceParam, buffers.of(grad), deviceBuffer, N, step == 1);
        }
        assertClose(
            device,
            settings + " parameter",
            expectedParam,
            buffers.read(deviceParam, N),
            CANCELLED);
        if (momentum) {
          assertClose(
              device,
              settings + " momentum buffer",
              expectedBuffer,
              buffers.read(deviceBuffer, N),
              CANCELLED);
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void adamAndAdamWMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceOptimizers optimizers = new DeviceOptimizers(runtime);
    Random random = new Random(DeviceTestSupport.SEED + 1);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (boolean decoupled : new boolean[] {false, true}) {
        AdamSettings settings = new AdamSettings(0.01, 0.9, 0.999, 1e-8, 0.05, decoupled);
        float[] param = randomFloats(random, N);
        Storage expectedParam = f64(param);
        Storage expectedM = f64(N);
        Storage expectedV = f64(N);
        DeviceBuffer deviceParam = buffers.of(param);
        DeviceBuffer m = buffers.of(new float[N]);
        DeviceBuffer v = buffers.of(new float[N]);
        for (int step = 1; step <= 2; step++) {
          float[] grad = randomFloats(random, N);
          OptimizerKernels.adamStep(settings, step, expectedParam, f64(grad), expectedM, expectedV);
          optimizers.adam(settings, step, deviceParam, buffers.of(grad), m, v, N);
        }
        String optimizer = decoupled ? "AdamW" : "Adam";
        assertClose(
            device,
            optimizer + " parameter",
            expectedParam,
            buffers.read(deviceParam, N),
            CANCELLED);
        assertClose(device, optimizer + " first moment", expectedM, buffers.read(m, N), CANCELLED);
        assertClose(device, optimizer + " second moment", expectedV, buffers.read(v, N), CANCELLED);
      }
    }
  }
}
