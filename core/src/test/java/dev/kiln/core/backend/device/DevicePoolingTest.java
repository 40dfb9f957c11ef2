package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DevicePooling} against {@link Pool2dKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DevicePoolingTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /**
   * Overlapping 3 x 2 windows with stride (2, 1) and padding (1, 1) over 2 x 3 planes of 7 x 6, so
   * that pixels belong to several windows and some windows reach into the padding.
   */
  private static final Pool2dGeometry OVERLAPPING =
      new Pool2dGeometry(2, 3, 7, 6, 3, 2, 2, 1, 1, 1);

  @ParameterizedTest
  @MethodSource(DEVICES)
  void maxPoolingMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DevicePooling pooling = new DevicePooling(runtime);
    Pool2dGeometry g = OVERLAPPING;
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, g.inputSize());
    // Ties inside a window, where the first in row-major order must win, and a NaN that wins.
    x[8] = 0.9f;
    x[9] = 0.9f;
    x[50] = Float.NaN;
    float[] gradY = randomFloats(random, g.outputSize());

    Storage expectedY = f64(g.outputSize());
    Storage expectedArgmax = Storage.allocate(DType.FLOAT32, g.outputSize());
    Pool2dKernels.maxForward(f64(x), g, expectedY, expectedArgmax);
    Storage expectedGradX = f64(g.inputSize());
    Pool2dKernels.maxBackward(f64(gradY), expectedArgmax, g, expectedGradX);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer y = buffers.filled(g.outputSize());
      DeviceBuffer argmax = buffers.of(new int[g.outputSize()]);
      pooling.maxForward(buffers.of(x), g, y, argmax);
      assertClose(device, "max pooling", expectedY, buffers.read(y, g.outputSize()), ROUNDED);
      assertArrayEquals(
          Pool2dKernels.argmaxIndices(expectedArgmax),
          buffers.readInts(argmax, g.outputSize()),
          "max pooling argmax on " + device);

      DeviceBuffer gradX = buffers.filled(g.inputSize());
      pooling.maxBackward(buffers.of(gradY), argmax, g, gradX);
      assertClose(
          device,
          "max pooling input gradient",
          expectedGradX,
          buffers.read(gradX, g.inputSize()),
          SUMMED);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void averagePoolingMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DevicePooling pooling = new DevicePooling(runtime);
    Pool2dGeometry g = OVERLAPPING;
    Random random = new Random(DeviceTestSupport.SEED + 1);
    float[] x = randomFloats(random, g.inputSize());
    float[] gradY = randomFloats(random, g.outputSize());

    Storage expectedY = f64(g.outputSize());
    Pool2dKernels.avgForward(f64(x), g, expectedY);
    Storage expectedGradX = f64(g.inputSize());
    Pool2dKernels.avgBackward(f64(gradY), g, expectedGradX);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer y = buffers.filled(g.outputSize());
      pooling.avgForward(buffers.of(x), g, y);
      assertClose(device, "average pooling", expectedY, buffers.read(y, g.outputSize()), SUMMED);

      DeviceBuffer gradX = buffers.filled(g.inputSize());
      pooling.avgBackward(buffers.of(gradY), g, gradX);
      assertClose(
          device,
          "average pooling input gradient",
          expectedGradX,
          buffers.read(gradX, g.inputSize()),
          SUMMED);
    }
  }
}
