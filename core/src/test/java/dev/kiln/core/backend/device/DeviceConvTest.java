package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Conv2dKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests both routes of {@link DeviceConv} against {@link Conv2dKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceConvTest {
  /** kiln's own routes; the cuDNN route is tested with a stand-in library in VendorRoutingTest. */
  private static final DeviceConv.Route[] KILN_ROUTES = {
    DeviceConv.Route.IM2COL, DeviceConv.Route.DIRECT
  };

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /**
   * A batch of 2 images of 3 x 7 x 6 into 4 channels, with a 3 x 2 kernel, stride (2, 1), padding
   * (1, 1) and dilation (1, 2). Every pair of sizes differs, so a swapped height and width, a
   * missed stride or a wrong padding offset changes the result. The output is 2 x 4 x 4 x 6.
   */
  private static final Conv2dGeometry GEOMETRY =
      new Conv2dGeometry(2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1, 2);

  @ParameterizedTest
  @MethodSource(DEVICES)
  void forwardMatchesTheCpuOnBothRoutes(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceConv conv = new DeviceConv(runtime);
    Conv2dGeometry g = GEOMETRY;
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] bias = randomFloats(random, g.outChannels());
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (boolean withBias : new boolean[] {true, false}) {
        Storage expected = f64(g.outputSize());
        Conv2dKernels.forward(f64(x), f64(w), withBias ? f64(bias) : null, g, expected);
        for (DeviceConv.Route route : KILN_ROUTES) {
          DeviceBuffer y = buffers.filled(g.outputSize());
          conv.forward(
              route, buffers.of(x), buffers.of(w), withBias ? buffers.of(bias) : null, g, y);
          assertClose(
              device,
              "conv forward by " + route + (withBias ? " with bias" : " without bias"),
              expected,
              buffers.read(y, g.outputSize()),
              SUMMED);
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void backwardMatchesTheCpuOnBothRoutes(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceConv conv = new DeviceConv(runtime);
    Conv2dGeometry g = GEOMETRY;
    Random random = new Random(DeviceTestSupport.SEED + 1);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());

    Storage expectedGradX = f64(g.inputSize());
    Conv2dKernels.backwardData(f64(gradY), f64(w), g, expectedGradX);
    Storage expectedGradW = f64(g.weightSize());
    Conv2dKernels.backwardWeight(f64(gradY), f64(x), g, expectedGradW);
    Storage expectedGradBias = f64(g.outChannels());
    Conv2dKernels.backwardBias(f64(gradY), g, expectedGradBias);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceW = buffers.of(w);
      DeviceBuffer deviceGradY = buffers.of(gradY);
      for (DeviceConv.Route route : KILN_ROUTES) {
        DeviceBuffer gradX = buffers.filled(g.inputSize());
        conv.backwardData(route, deviceGradY, deviceW, g, gradX);
        assertClose(
            device,
            "conv input gradient by " + route,
            expectedGradX,
            buffers.read(gradX, g.inputSize()),
            SUMMED);

        DeviceBuffer gradW = buffers.filled(g.weightSize());
        conv.backwardWeight(route, deviceGradY, deviceX, g, gradW);
        assertClose(
            device,
            "conv weight gradient by " + route,
            expectedGradW,
            buffers.read(gradW, g.weightSize()),
            SUMMED);
      }
      DeviceBuffer gradBias = buffers.filled(g.outChannels());
      conv.backwardBias(deviceGradY, g, gradBias);
      assertClose(
          device,
          "conv bias gradient",
          expectedGradBias,
          buffers.read(gradBias, g.outChannels()),
          SUMMED);
    }
  }
}
