package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.VendorContractSupport.nans;
import static dev.kiln.core.backend.device.VendorContractSupport.toFloats;

import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.cuda.libraries.VendorDnn.PoolingMode;
import dev.kiln.core.backend.device.VendorContractSupport.Bindings;
import dev.kiln.core.backend.device.VendorContractSupport.Buffers;
import dev.kiln.core.backend.device.VendorContractSupport.ForEachBinding;
import dev.kiln.core.backend.device.VendorContractSupport.Opened;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;

/**
 * Checks the pooling calls of {@link VendorDnn} in every {@link PoolingMode} against a float64
 * loop, for each binding of {@link VendorContractSupport}.
 */
class VendorPoolingGpuTest {
  private static final Bindings BINDINGS = new Bindings(VendorPoolingGpuTest.class);

  /**
   * Pooling shape with overlapping windows (stride below the window), padding that lets the two
   * averages differ at the borders, and different sizes along height and width.
   */
  private static final Pool2dGeometry POOLING = new Pool2dGeometry(2, 3, 7, 6, 3, 2, 2, 1, 1, 1);

  private final Random random = new Random(DeviceTestSupport.SEED);

  @AfterAll
  static void closeBindings() {
    BINDINGS.close();
  }

  @ForEachBinding
  void poolingForward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    Pool2dGeometry g = POOLING;
    float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
    for (PoolingMode mode : PoolingMode.values()) {
      try (Buffers buffers = new Buffers(opened.memory())) {
        long y = buffers.of(nans(g.outputSize()));

        dnn.poolingForward(mode, g, buffers.of(x), y);

        PoolingCase expected = PoolingCase.of(mode, g, x, new float[g.outputSize()]);
        assertClose(binding, mode + " output", expected.y, buffers.read(y, g.outputSize()), SUMMED);
      }
    }
  }

  @ForEachBinding
  void poolingBackward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    Pool2dGeometry g = POOLING;
    float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
    float[] dy = DeviceTestSupport.randomFloats(random, g.outputSize());
    for (PoolingMode mode : PoolingMode.values()) {
      PoolingCase expected = PoolingCase.of(mode, g, x, dy);
      try (Buffers buffers = new Buffers(opened.memory())) {
        long dx = buffers.of(nans(g.inputSize()));

        // cuDNN may locate each window's maximum by comparing x with y, so y must be the exact
        // forward output. A maximum is an element of x, so its float32 value is exact.
        dnn.poolingBackward(
            mode, g, buffers.of(x), buffers.of(toFloats(expected.y)), buffers.of(dy), dx);

        assertClose(
            binding,
            mode + " input gradient",
            expected.dx,
            buffers.read(dx, g.inputSize()),
            SUMMED);
      }
    }
  }

  // Reference.

  /** One pooling's output and input gradient in float64, for one mode. */
  private record PoolingCase(double[] y, double[] dx) {

    static PoolingCase of(PoolingMode mode, Pool2dGeometry g, float[] x, float[] dy) {
      double[] y = new double[g.outputSize()];
      double[] dx = new double[g.inputSize()];
      int o = 0;
      for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
        int planeStart = plane * g.inHeight() * g.inWidth();
        for (int i = 0; i < g.outHeight(); i++) {
          for (int j = 0; j < g.outWidth(); j++) {
            // The window's input elements, with the padding left out.
            List<Integer> window = new ArrayList<>();
            for (int r = 0; r < g.kernelHeight(); r++) {
              for (int s = 0; s < g.kernelWidth(); s++) {
                int h = i * g.strideHeight() - g.padHeight() + r;
                int v = j * g.strideWidth() - g.padWidth() + s;
                if (h >= 0 && h < g.inHeight() && v >= 0 && v < g.inWidth()) {
                  window.add(planeStart + h * g.inWidth() + v);
                }
              }
            }
            if (mode == PoolingMode.MAX) {
              int best = window.get(0);
              for (int index : window) {
                best = x[index] > x[best] ? index : best;
              }
              y[o] = x[best];
              dx[best] += dy[o];
            } else {
              double count =
                  mode == PoolingMode.AVERAGE_INCLUDE_PADDING
                      ? g.kernelHeight() * g.kernelWidth()
                      : window.size();
              for (int index : window) {
                y[o] += x[index] / count;
                dx[index] += dy[o] / count;
              }
            }
            o++;
          }
        }
      }
      return new PoolingCase(y, dx);
    }
  }
}
