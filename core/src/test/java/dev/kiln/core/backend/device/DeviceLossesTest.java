package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.LossKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceLosses} against {@link LossKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceLossesTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /**
   * 613 elements: with blocks of 256 threads that is 3 blocks, so the loss adds 3 partial sums, the
   * last block only partly filled.
   */
  private static final int N = 613;

  private static final double BETA = 0.4;
  private static final double WING_W = 0.5;
  private static final double WING_EPSILON = 0.2;

  /** One loss on both devices: the device call, and the CPU kernel that returns the sum. */
  private interface Loss {
    void device(
        DeviceLosses losses,
        DeviceBuffer x,
        DeviceBuffer t,
        Reduction reduction,
        DeviceBuffer loss,
        DeviceBuffer grad);

    double cpu(Storage x, Storage t, Storage grad, double scale);
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void everyLossAndItsGradientMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLosses losses = new DeviceLosses(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, N);
    float[] t = randomFloats(random, N);
    t[10] = x[10]; // d = 0, where L1 and Wing take the derivative 0
    Loss[] all = {
      new Named("MSE", (l, a, b, r, out, g) -> l.mse(a, b, N, r, out, g), LossKernels::mse),
      new Named("L1", (l, a, b, r, out, g) -> l.l1(a, b, N, r, out, g), LossKernels::l1),
      new Named(
          "SmoothL1",
          (l, a, b, r, out, g) -> l.smoothL1(a, b, N, BETA, r, out, g),
          (a, b, g, s) -> LossKernels.smoothL1(a, b, BETA, g, s)),
      new Named(
          "Wing",
          (l, a, b, r, out, g) -> l.wing(a, b, N, WING_W, WING_EPSILON, r, out, g),
          (a, b, g, s) -> LossKernels.wing(a, b, WING_W, WING_EPSILON, g, s))
    };
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceT = buffers.of(t);
      for (Loss loss : all) {
        for (Reduction reduction : Reduction.values()) {
          double factor = reduction == Reduction.MEAN ? 1.0 / N : 1.0;
          Storage expectedGrad = f64(N);
          double expected = loss.cpu(f64(x), f64(t), expectedGrad, factor) * factor;

          DeviceBuffer value = buffers.filled(1);
          DeviceBuffer grad = buffers.filled(N);
          loss.device(losses, deviceX, deviceT, reduction, value, grad);
          String quantity = loss + " " + reduction;
          assertClose(device, quantity, new double[] {expected}, buffers.read(value, 1), SUMMED);
          assertClose(device, quantity + " gradient", expectedGrad, buffers.read(grad, N), ROUNDED);

          // Without a gradient buffer the loss is the same.
          loss.device(losses, deviceX, deviceT, reduction, value, null);
          assertClose(
              device,
              quantity + " without gradient",
              new double[] {expected},
              buffers.read(value, 1),
              SUMMED);

          // Without a loss buffer the gradient is the same, from the loss kernel's launch alone.
          DeviceBuffer gradOnly = buffers.filled(N);
          DeviceWork before = runtime.work();
          loss.device(losses, deviceX, deviceT, reduction, null, gradOnly);
          DeviceWork work = runtime.work().minus(before);
          assertClose(
              device,
              quantity + " gradient alone",
              expectedGrad,
              buffers.read(gradOnly, N),
              ROUNDED);
          assertEquals(
              1, work.launches(), quantity + " gradient alone: " + work.launchesByKernel());
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void lossWithoutAnyOutputIsRejected(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(new float[] {1, 2});
      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () -> new DeviceLosses(runtime).mse(x, x, 2, Reduction.MEAN, null, null));
      assertTrue(error.getMessage().contains("got neither"), error.getMessage());
    }
  }

  /** A loss with a name for messages. */
  private record Named(String name, DeviceCall call, CpuCall reference) implements Loss {
    @Override
    public void device(
        DeviceLosses losses,
        DeviceBuffer x,
        DeviceBuffer t,
        Reduction reduction,
        DeviceBuffer loss,
        DeviceBuffer grad) {
      call.run(losses, x, t, reduction, loss, grad);
    }

    @Override
    public double cpu(Storage x, Storage t, Storage grad, double scale) {
      return reference.sum(x, t, grad, scale);
    }

    @Override
    public String toString() {
      return name;
    }
  }

  private interface DeviceCall {
    void run(
        DeviceLosses losses,
        DeviceBuffer x,
        DeviceBuffer t,
        Reduction reduction,
        DeviceBuffer loss,
        DeviceBuffer grad);
  }

  private interface CpuCall {
    double sum(Storage x, Storage t, Storage grad, double scale);
  }
}
