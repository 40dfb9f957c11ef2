package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tests {@link DeviceDropout} against the mask that {@link SplittableRandom} defines: element i of
 * a launch with (seed, offset) is dropped when the top 24 bits of the (offset + i)-th {@code
 * nextLong()}, scaled to [0, 1), are below p. The CPU's Dropout op draws from its own generator, so
 * the generator's definition, not the CPU op, is the reference here.
 */
@ExtendWith(SkipUnusableCuda.class)
class DeviceDropoutTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  private static final int N = 301;
  private static final long SEED = 0x5eed_cafeL;
  private static final long OFFSET = 1000;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void forwardAndBackwardUseTheReproducibleMask(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceDropout dropout = new DeviceDropout(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, N);
    float[] gradY = randomFloats(random, N);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceGradY = buffers.of(gradY);
      for (double p : new double[] {0.0, 0.3, 1.0}) {
        double[] mask = expectedMask(p);
        double[] y = new double[N];
        double[] gradX = new double[N];
        for (int i = 0; i < N; i++) {
          y[i] = x[i] * mask[i];
          gradX[i] = gradY[i] * mask[i];
        }
        DeviceBuffer out = buffers.filled(N);
        DeviceBuffer deviceMask = buffers.filled(N);
        dropout.forward(deviceX, out, deviceMask, N, p, SEED, OFFSET);
        assertClose(device, "dropout mask, p=" + p, mask, buffers.read(deviceMask, N), ROUNDED);
        assertClose(device, "dropout output, p=" + p, y, buffers.read(out, N), ROUNDED);

        DeviceBuffer deviceGradX = buffers.filled(N);
        dropout.backward(deviceGradY, deviceGradX, N, p, SEED, OFFSET);
        assertClose(
            device, "dropout input gradient, p=" + p, gradX, buffers.read(deviceGradX, N), ROUNDED);
      }
    }
  }

  /** The mask of the kernels' generator, computed from SplittableRandom. */
  private static double[] expectedMask(double p) {
    SplittableRandom generator = new SplittableRandom(SEED);
    for (long skip = 0; skip < OFFSET; skip++) {
      generator.nextLong();
    }
    float scale = p < 1 ? 1.0f / (1.0f - (float) p) : 0.0f;
    double[] mask = new double[N];
    for (int i = 0; i < N; i++) {
      float u = (generator.nextLong() >>> 40) * (1.0f / 16777216.0f);
      mask[i] = u < (float) p ? 0.0 : scale;
    }
    return mask;
  }
}
