package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.VendorContractSupport.CONVOLUTION;
import static dev.kiln.core.backend.device.VendorContractSupport.nans;
import static dev.kiln.core.backend.device.VendorContractSupport.plus;
import static dev.kiln.core.backend.device.VendorContractSupport.startOf;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.device.VendorContractSupport.Bindings;
import dev.kiln.core.backend.device.VendorContractSupport.Buffers;
import dev.kiln.core.backend.device.VendorContractSupport.ForEachBinding;
import dev.kiln.core.backend.device.VendorContractSupport.Opened;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;

/**
 * Checks the four convolution calls of {@link VendorDnn} against one float64 loop, for each binding
 * of {@link VendorContractSupport}. The three backward calls run once overwriting and once
 * accumulating into a random start.
 */
class VendorConvolutionGpuTest {
  private static final Bindings BINDINGS = new Bindings(VendorConvolutionGpuTest.class);

  /** Convolution shapes: one strided, padded and dilated with odd sizes, and a padded 3x3. */
  private static final List<Conv2dGeometry> CONVOLUTIONS =
      List.of(
          new Conv2dGeometry(2, 3, 9, 7, 4, 3, 3, 2, 1, 1, 2, 2, 1),
          new Conv2dGeometry(2, 5, 6, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1));

  private final Random random = new Random(DeviceTestSupport.SEED);

  @AfterAll
  static void closeBindings() {
    BINDINGS.close();
  }

  @ForEachBinding
  void convolutionForward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      try (Buffers buffers = new Buffers(opened.memory())) {
        long y = buffers.of(nans(g.outputSize()));

        dnn.convolutionForward(g, buffers.of(c.x), buffers.of(c.w), y);

        assertClose(binding, "output of " + g, c.y, buffers.read(y, g.outputSize()), CONVOLUTION);
      }
    }
  }

  @ForEachBinding
  void convolutionBackwardData(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory())) {
          float[] start = startOf(random, accumulate, g.inputSize());
          long dx = buffers.of(start);

          dnn.convolutionBackwardData(g, buffers.of(c.w), buffers.of(c.dy), dx, accumulate);

          assertClose(
              binding,
              "input gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.dx),
              buffers.read(dx, g.inputSize()),
              CONVOLUTION);
        }
      }
    }
  }

  @ForEachBinding
  void convolutionBackwardFilter(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory())) {
          float[] start = startOf(random, accumulate, g.weightSize());
          long dw = buffers.of(start);

          dnn.convolutionBackwardFilter(g, buffers.of(c.x), buffers.of(c.dy), dw, accumulate);

          assertClose(
              binding,
              "weight gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.dw),
              buffers.read(dw, g.weightSize()),
              CONVOLUTION);
        }
      }
    }
  }

  @ForEachBinding
  void convolutionBackwardBias(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory())) {
          float[] start = startOf(random, accumulate, g.outChannels());
          long db = buffers.of(start);

          dnn.convolutionBackwardBias(g, buffers.of(c.dy), db, accumulate);

          assertClose(
              binding,
              "bias gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.db),
              buffers.read(db, g.outChannels()),
              SUMMED);
        }
      }
    }
  }

  // Reference.

  /**
   * Random operands of one convolution, and its four results computed in float64 by one loop over
   * every (output position, weight element) pair that reads an input element inside the padding.
   */
  private record ConvolutionCase(
      float[] x, float[] w, float[] dy, double[] y, double[] dx, double[] dw, double[] db) {

    static ConvolutionCase random(Random random, Conv2dGeometry g) {
      float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
      float[] w = DeviceTestSupport.randomFloats(random, g.weightSize());
      float[] dy = DeviceTestSupport.randomFloats(random, g.outputSize());
      double[] y = new double[g.outputSize()];
      double[] dx = new double[g.inputSize()];
      double[] dw = new double[g.weightSize()];
      double[] db = new double[g.outChannels()];
      int oh = g.outHeight();
      int ow = g.outWidth();
      for (int n = 0; n < g.batch(); n++) {
        for (int k = 0; k < g.outChannels(); k++) {
          for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
              int o = ((n * g.outChannels() + k) * oh + i) * ow + j;
              db[k] += dy[o];
              for (int c = 0; c < g.inChannels(); c++) {
                for (int r = 0; r < g.kernelHeight(); r++) {
                  int h = i * g.strideHeight() - g.padHeight() + r * g.dilationHeight();
                  for (int s = 0; s < g.kernelWidth(); s++) {
                    int v = j * g.strideWidth() - g.padWidth() + s * g.dilationWidth();
                    if (h < 0 || h >= g.inHeight() || v < 0 || v >= g.inWidth()) {
                      continue;
                    }
                    int in = ((n * g.inChannels() + c) * g.inHeight() + h) * g.inWidth() + v;
                    int wi =
                        ((k * g.inChannels() + c) * g.kernelHeight() + r) * g.kernelWidth() + s;
                    y[o] += (double) x[in] * w[wi];
                    dx[in] += (double) w[wi] * dy[o];
                    dw[wi] += (double) x[in] * dy[o];
                  }
                }
              }
            }
          }
        }
      }
      return new ConvolutionCase(x, w, dy, y, dx, dw, db);
    }
  }
}
