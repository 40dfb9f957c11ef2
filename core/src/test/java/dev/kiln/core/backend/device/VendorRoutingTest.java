package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The launchers' cuBLAS and cuDNN routes, run on the emulated device against the host stand-ins of
 * {@link HostStandInVendors}. Each test runs the same call once through a launcher that has the
 * stand-in and once through kiln's own kernels, checks that the stand-in was called, and compares
 * the two results. This checks what kiln adds around the libraries: the row-major to column-major
 * mapping, alpha and beta, the bias added after cuDNN's convolution, and which calls cuDNN may
 * take. The libraries themselves run only on a GPU, in the GPU check script.
 */
class VendorRoutingTest {
  private static final String DEVICE = "emulated";
  private final DeviceRuntime runtime = DeviceTestSupport.runtime(DEVICE);
  private final Random random = new Random(DeviceTestSupport.SEED);

  @Test
  void productsUseCublasRowMajor() {
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceMatmul vendor = new DeviceMatmul(runtime, blas);
    DeviceMatmul kiln = new DeviceMatmul(runtime);
    int m = 5;
    int n = 7;
    int k = 3;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (boolean accumulate : new boolean[] {false, true}) {
            DeviceBuffer a = buffers.of(randomFloats(random, m * k));
            DeviceBuffer b = buffers.of(randomFloats(random, k * n));
            float[] start = randomFloats(random, m * n);
            DeviceBuffer expected = buffers.of(start);
            DeviceBuffer actual = buffers.of(start);
            kiln.gemm(transA, transB, m, n, k, a, b, expected, accumulate);
            vendor.gemm(transA, transB, m, n, k, a, b, actual, accumulate);
            assertClose(
                DEVICE,
                "product with transA="
                    + transA
                    + ", transB="
                    + transB
                    + ", accumulate="
                    + accumulate,
                toDoubles(buffers.read(expected, m * n)),
                buffers.read(actual, m * n),
                ROUNDED);
          }
        }
      }
    }
    assertEquals(8, blas.calls.size(), "every product should reach cuBLAS");
  }

  @Test
  void batchedProductsUseOneCublasCall() {
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceMatmul vendor = new DeviceMatmul(runtime, blas);
    DeviceMatmul kiln = new DeviceMatmul(runtime);
    int batches = 4;
    int m = 3;
    int n = 5;
    int k = 2;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (int variant = 0; variant < 4; variant++) {
        boolean transA = (variant & 1) != 0;
        boolean transB = (variant & 2) != 0;
        boolean accumulate = variant == 2;
        DeviceBuffer a = buffers.of(randomFloats(random, batches * m * k));
        DeviceBuffer b = buffers.of(randomFloats(random, batches * k * n));
        float[] start = randomFloats(random, batches * m * n);
        DeviceBuffer expected = buffers.of(start);
        DeviceBuffer actual = buffers.of(start);
        kiln.batchedGemm(transA, transB, m, n, k, batches, a, b, expected, accumulate);
        vendor.batchedGemm(transA, transB, m, n, k, batches, a, b, actual, accumulate);
        assertClose(
            DEVICE,
            "batched product with transA=" + transA + ", transB=" + transB,
            toDoubles(buffers.read(expected, batches * m * n)),
            buffers.read(actual, batches * m * n),
            ROUNDED);
      }
    }
    assertEquals(
        List.of(
            "sgemmStridedBatched",
            "sgemmStridedBatched",
            "sgemmStridedBatched",
            "sgemmStridedBatched"),
        blas.calls,
        "each batch of products should be one strided batched cuBLAS call");
  }

  @Test
  void namedKernelSkipsCublas() {
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceMatmul vendor = new DeviceMatmul(runtime, blas);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.of(randomFloats(random, 4));
      DeviceBuffer c = buffers.filled(4);
      vendor.gemm(DeviceMatmul.Kernel.TILED, false, false, 2, 2, 2, a, a, c, false);
    }
    assertTrue(blas.calls.isEmpty(), "a named kiln kernel must not reach cuBLAS");
  }

  @Test
  void convolutionUsesCudnnWithBias() {
    HostStandInVendors.Dnn dnn = new HostStandInVendors.Dnn();
    DeviceConv vendor = new DeviceConv(runtime, new DeviceMatmul(runtime), dnn);
    DeviceConv kiln = new DeviceConv(runtime);
    assertEquals(DeviceConv.Route.CUDNN, vendor.preferredRoute());
    assertEquals(DeviceConv.Route.IM2COL, kiln.preferredRoute());
    Conv2dGeometry g = new Conv2dGeometry(2, 3, 6, 5, 4, 3, 3, 1, 2, 1, 0, 1, 1);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(randomFloats(random, g.inputSize()));
      DeviceBuffer w = buffers.of(randomFloats(random, g.weightSize()));
      DeviceBuffer bias = buffers.of(randomFloats(random, g.outChannels()));
      DeviceBuffer gradY = buffers.of(randomFloats(random, g.outputSize()));
      // Per launcher: the output, the input gradient and the weight gradient.
      int[] sizes = {g.outputSize(), g.inputSize(), g.weightSize()};
      DeviceBuffer[] results = new DeviceBuffer[6];
      for (int i = 0; i < results.length; i++) {
        results[i] = buffers.filled(sizes[i % 3]);
      }
      DeviceConv[] launchers = {kiln, vendor};
      for (int l = 0; l < 2; l++) {
        DeviceConv conv = launchers[l];
        conv.forward(conv.preferredRoute(), x, w, bias, g, results[3 * l]);
        conv.backwardData(conv.preferredRoute(), gradY, w, g, results[3 * l + 1]);
        conv.backwardWeight(conv.preferredRoute(), gradY, x, g, results[3 * l + 2]);
      }
      String[] names = {"output", "input gradient", "weight gradient"};
      for (int q = 0; q < 3; q++) {
        assertClose(
            DEVICE,
            "cuDNN route " + names[q],
            toDoubles(buffers.read(results[q], sizes[q])),
            buffers.read(results[3 + q], sizes[q]),
            SUMMED);
      }
    }
    assertEquals(
        List.of("convolutionForward", "convolutionBackwardData", "convolutionBackwardFilter"),
        dnn.calls);
  }

  @Test
  void poolingUsesCudnn() {
    HostStandInVendors.Dnn dnn = new HostStandInVendors.Dnn();
    DevicePooling vendor = new DevicePooling(runtime, dnn);
    DevicePooling kiln = new DevicePooling(runtime);
    assertTrue(vendor.hasCudnn());
    assertFalse(kiln.hasCudnn());
    Pool2dGeometry g = new Pool2dGeometry(2, 3, 7, 6, 3, 2, 2, 2, 1, 0);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(randomFloats(random, g.inputSize()));
      DeviceBuffer gradY = buffers.of(randomFloats(random, g.outputSize()));
      for (boolean max : new boolean[] {true, false}) {
        DeviceBuffer expectedY = buffers.filled(g.outputSize());
        DeviceBuffer expectedGradX = buffers.filled(g.inputSize());
        if (max) {
          DeviceBuffer argmax = buffers.filled(g.outputSize());
          kiln.maxForward(x, g, expectedY, argmax);
          kiln.maxBackward(gradY, argmax, g, expectedGradX);
        } else {
          kiln.avgForward(x, g, expectedY);
          kiln.avgBackward(gradY, g, expectedGradX);
        }
        VendorDnn.PoolingMode mode =
            max ? VendorDnn.PoolingMode.MAX : VendorDnn.PoolingMode.AVERAGE_INCLUDE_PADDING;
        DeviceBuffer y = buffers.filled(g.outputSize());
        DeviceBuffer gradX = buffers.filled(g.inputSize());
        vendor.cudnnForward(mode, x, g, y);
        vendor.cudnnBackward(mode, g, x, y, gradY, gradX);
        assertClose(
            DEVICE,
            mode + " output",
            toDoubles(buffers.read(expectedY, g.outputSize())),
            buffers.read(y, g.outputSize()),
            ROUNDED);
        assertClose(
            DEVICE,
            mode + " input gradient",
            toDoubles(buffers.read(expectedGradX, g.inputSize())),
            buffers.read(gradX, g.inputSize()),
            ROUNDED);
      }
    }
    assertEquals(4, dnn.calls.size());
  }

  @Test
  void batchNormUsesCudnnWhenAllowed() {
    HostStandInVendors.Dnn dnn = new HostStandInVendors.Dnn();
    DeviceBatchNorm vendor = new DeviceBatchNorm(runtime, dnn);
    DeviceBatchNorm kiln = new DeviceBatchNorm(runtime);
    int n = 3;
    int c = 2;
    int s = 5;
    int size = n * c * s;
    double eps = 1e-5;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(randomFloats(random, size));
      DeviceBuffer gamma = buffers.of(randomFloats(random, c));
      DeviceBuffer beta = buffers.of(randomFloats(random, c));
      DeviceBuffer gradOut = buffers.of(randomFloats(random, size));
      float[] runningStart = {0.5f, 1.5f};
      DeviceBatchNorm[] launchers = {kiln, vendor};
      float[][] results = new float[2][];
      for (int l = 0; l < 2; l++) {
        DeviceBuffer out = buffers.filled(size);
        DeviceBuffer mean = buffers.filled(c);
        DeviceBuffer invStd = buffers.filled(c);
        DeviceBuffer runningMean = buffers.of(runningStart);
        DeviceBuffer runningVar = buffers.of(runningStart);
        DeviceBuffer gradX = buffers.filled(size);
        DeviceBuffer gradGamma = buffers.filled(c);
        DeviceBuffer gradBeta = buffers.filled(c);
        launchers[l].forwardTraining(
            x, n, c, s, gamma, beta, eps, 0.1, out, mean, invStd, runningMean, runningVar);
        launchers[l].backwardTraining(
            gradOut, x, n, c, s, gamma, mean, invStd, eps, gradX, gradGamma, gradBeta);
        results[l] =
            concat(
                buffers.read(out, size),
                buffers.read(runningMean, c),
                buffers.read(runningVar, c),
                buffers.read(gradX, size),
                buffers.read(gradGamma, c),
                buffers.read(gradBeta, c));
      }
      assertClose(DEVICE, "cuDNN batch norm", toDoubles(results[0]), results[1], SUMMED);
      assertEquals(List.of("batchNormForwardTraining", "batchNormBackward"), dnn.calls);

      // Without gamma, or with an epsilon below cuDNN's minimum of 0, kiln's kernel takes the call.
      DeviceBuffer out = buffers.filled(size);
      DeviceBuffer mean = buffers.filled(c);
      DeviceBuffer invStd = buffers.filled(c);
      vendor.forwardTraining(x, n, c, s, null, null, eps, 0.1, out, mean, invStd, null, null);
      vendor.forwardInference(x, n, c, s, gamma, beta, mean, invStd, -1e-3, out);
      assertEquals(2, dnn.calls.size(), "calls that cuDNN cannot take must stay on kiln");

      // cuDNN accepts any epsilon of at least CUDNN_BN_MIN_EPSILON, which is 0.
      vendor.forwardInference(x, n, c, s, gamma, beta, mean, invStd, 1e-6, out);
      assertEquals(
          List.of("batchNormForwardTraining", "batchNormBackward", "batchNormForwardInference"),
          dnn.calls,
          "an epsilon of 1e-6 goes to cuDNN");
    }
  }

  @Test
  void dropoutUsesCudnnWithOneStatePerProbability() {
    HostStandInVendors.Dnn dnn = new HostStandInVendors.Dnn();
    DeviceDropout vendor = new DeviceDropout(runtime, dnn);
    assertTrue(vendor.hasCudnn());
    assertFalse(new DeviceDropout(runtime).hasCudnn());
    int n = 301;
    double p = 0.3;
    // The stand-in requests 301 bytes, which round up to 76 floats.
    assertEquals(76, vendor.cudnnReserveFloats(n));
    assertEquals(
        1, vendor.cudnnReserveFloats(0), "zero elements need no mask, so cuDNN is not asked");
    float[] x = DeviceTestSupport.randomFloats(random, n);
    float[] gradY = DeviceTestSupport.randomFloats(random, n);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer[] outputs = {buffers.filled(n), buffers.filled(n)};
      DeviceBuffer[] reserves = {buffers.filled(76), buffers.filled(76)};
      // Two forward calls with different seeds: the first seeds p's state, the second continues it.
      vendor.cudnnForward(deviceX, outputs[0], reserves[0], n, p, 11);
      vendor.cudnnForward(deviceX, outputs[1], reserves[1], n, p, 22);
      float[] first = buffers.read(outputs[0], n);
      float[] second = buffers.read(outputs[1], n);
      int differ = 0;
      for (int i = 0; i < n; i++) {
        assertTrue(
            first[i] == 0 || Math.abs(first[i] - x[i] / (1 - p)) < 1e-6,
            "element " + i + " should be dropped or scaled by 1 / (1 - p), got " + first[i]);
        differ += (first[i] == 0) != (second[i] == 0) ? 1 : 0;
      }
      assertTrue(differ > 0, "the second call must draw a new mask from the advanced state");

      // Backward reads the first call's mask from its reserve, whatever the second call drew.
      DeviceBuffer gradX = buffers.filled(n);
      vendor.cudnnBackward(buffers.of(gradY), gradX, reserves[0], n, p);
      double[] expected = new double[n];
      for (int i = 0; i < n; i++) {
        expected[i] = first[i] == 0 ? 0 : gradY[i] / (1 - p);
      }
      assertClose(
          DEVICE, "cuDNN dropout input gradient", expected, buffers.read(gradX, n), ROUNDED);

      // Another probability gets a state of its own, seeded by its own first call.
      vendor.cudnnForward(deviceX, outputs[0], reserves[0], n, 0.5, 33);
      assertEquals(
          List.of(
              "dropoutForward p=0.3 seed=11",
              "dropoutForward p=0.3 seed=11",
              "dropoutBackward p=0.3 seed=11",
              "dropoutForward p=0.5 seed=33"),
          dnn.calls);
    }
  }

  @Test
  void cudnnDropoutRejectsWhatItCannotTake() {
    DeviceDropout vendor = new DeviceDropout(runtime, new HostStandInVendors.Dnn());
    int n = 64;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.filled(n);
      DeviceBuffer y = buffers.filled(n);
      DeviceBuffer reserve = buffers.filled(vendor.cudnnReserveFloats(n));
      // The allocator rounds a one-float buffer up to its smallest block, far below 4096 bytes.
      DeviceBuffer large = buffers.filled(4096);
      String small =
          assertThrows(
                  IllegalArgumentException.class,
                  () -> vendor.cudnnForward(large, large, buffers.filled(1), 4096, 0.5, 1))
              .getMessage();
      assertTrue(small.contains("needs 4096 bytes for 4096 elements"), small);
      String early =
          assertThrows(
                  IllegalStateException.class, () -> vendor.cudnnBackward(x, y, reserve, n, 0.5))
              .getMessage();
      assertTrue(early.contains("before any forward pass"), early);
      String all =
          assertThrows(
                  IllegalArgumentException.class,
                  () -> vendor.cudnnForward(x, y, reserve, n, 1.0, 1))
              .getMessage();
      assertTrue(all.contains("[0, 1)"), all);
      // 1 - 1e-8 is below 1 as a double but rounds to 1.0f, the probability cuDNN would receive.
      double nearlyOne = 1 - 1e-8;
      assertFalse(vendor.cudnnTakes(nearlyOne), "p = 1 - 1e-8 must stay on kiln's kernel");
      assertThrows(
          IllegalArgumentException.class,
          () -> vendor.cudnnForward(x, y, reserve, n, nearlyOne, 1));
      assertTrue(vendor.cudnnTakes(0.5), "p = 0.5 goes to cuDNN");
      assertFalse(new DeviceDropout(runtime).cudnnTakes(0.5), "no cuDNN, no cuDNN dropout");
      String none =
          assertThrows(
                  IllegalStateException.class,
                  () -> new DeviceDropout(runtime).cudnnForward(x, y, reserve, n, 0.5, 1))
              .getMessage();
      assertTrue(none.contains("no cuDNN"), none);
    }
  }

  private static float[] concat(float[]... parts) {
    int total = 0;
    for (float[] part : parts) {
      total += part.length;
    }
    float[] all = new float[total];
    int next = 0;
    for (float[] part : parts) {
      System.arraycopy(part, 0, all, next, part.length);
      next += part.length;
    }
    return all;
  }

  private static double[] toDoubles(float[] values) {
    double[] result = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = values[i];
    }
    return result;
  }
}
