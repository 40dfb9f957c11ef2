package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.CudaContext;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * Runs the direct bindings on a real GPU against plain Java loops. Each test skips with the
 * availability check's reason where {@code cuda:0} is unusable, and with the loader's reason where
 * cuBLAS or cuDNN is not found.
 */
class VendorGpuTest {

  /**
   * Relative tolerance, applied to magnitudes of at least 1. The bindings use plain float32 math
   * (no TF32), so results differ from the Java loops only in summation order. For sums of at most a
   * few hundred terms that difference is expected well below 1e-4 relative.
   */
  private static final float TOLERANCE = 1e-4f;

  /**
   * Returns the context of {@code cuda:0}, or skips. The vendor libraries need no kernels, so a
   * device whose only missing piece is kiln's fatbin counts as usable here.
   */
  private static CudaContext contextOrSkip() {
    CudaAvailability availability = CudaAvailability.check(0);
    boolean onlyFatbinMissing = availability.message().contains(CudaAvailability.FATBIN_RESOURCE);
    assumeTrue(
        availability.usable() || onlyFatbinMissing, "GPU test skipped: " + availability.message());
    return CudaContext.of(0);
  }

  /** Loads a binding, or skips the test with the loader's reason. */
  private static <T> T loadOrSkip(Supplier<T> loader) {
    try {
      return loader.get();
    } catch (LibraryLoadException e) {
      assumeTrue(false, "vendor library test skipped: " + e.getMessage());
      throw e;
    }
  }

  private static float[] random(int n, long seed) {
    Random random = new Random(seed);
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = random.nextFloat() * 2 - 1;
    }
    return values;
  }

  private static DeviceBuffer upload(CudaContext context, float[] values) {
    DeviceBuffer buffer = context.allocator().allocate(values.length * 4L);
    context.copies().toDevice(values, 0, buffer, 0, values.length);
    return buffer;
  }

  private static float[] download(CudaContext context, DeviceBuffer buffer, int n) {
    float[] values = new float[n];
    context.synchronize();
    context.copies().toHost(buffer, 0, values, 0, n);
    return values;
  }

  private static void assertClose(float[] expected, float[] actual, String label) {
    assertEquals(expected.length, actual.length, label + " length");
    for (int i = 0; i < expected.length; i++) {
      float bound = TOLERANCE * Math.max(1f, Math.abs(expected[i]));
      assertEquals(expected[i], actual[i], bound, label + " element " + i);
    }
  }

  @Test
  void directSgemmMatchesJavaProduct() {
    CudaContext context = contextOrSkip();
    DiscoveryResult found = LibraryDiscovery.system().find(VendorLibrary.CUBLAS);
    try (CublasDirect blas = loadOrSkip(() -> CublasDirect.load(found, VendorDevice.of(context)))) {
      int m = 5;
      int n = 7;
      int k = 9;
      float[] a = random(m * k, 1);
      float[] b = random(k * n, 2);
      float[] expected = new float[m * n];
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
          float sum = 0;
          for (int p = 0; p < k; p++) {
            sum += a[i * k + p] * b[p * n + j];
          }
          expected[i * n + j] = sum;
        }
      }
      DeviceBuffer da = upload(context, a);
      DeviceBuffer db = upload(context, b);
      DeviceBuffer dc = upload(context, new float[m * n]);

      blas.sgemmRowMajor(false, false, m, n, k, 1f, da.address(), db.address(), 0f, dc.address());

      assertClose(expected, download(context, dc, m * n), "row-major sgemm");
    }
  }

  @Test
  void directConvolutionAndPoolingMatchJavaLoops() {
    CudaContext context = contextOrSkip();
    LibraryDiscovery discovery = LibraryDiscovery.system();
    try (CudnnDirect dnn =
        loadOrSkip(() -> CudnnDirect.load(discovery, VendorDevice.of(context)))) {
      Conv2dGeometry g = new Conv2dGeometry(2, 3, 8, 7, 4, 3, 3, 2, 1, 1, 1, 1, 1);
      float[] x = random(g.inputSize(), 3);
      float[] w = random(g.weightSize(), 4);
      DeviceBuffer dx = upload(context, x);
      DeviceBuffer dw = upload(context, w);
      DeviceBuffer dy = upload(context, new float[g.outputSize()]);

      dnn.convolutionForward(g, dx.address(), dw.address(), dy.address());

      assertClose(convolve(g, x, w), download(context, dy, g.outputSize()), "convolution");

      Pool2dGeometry p = new Pool2dGeometry(2, 3, 8, 7, 2, 2, 2, 2, 0, 0);
      DeviceBuffer pooled = upload(context, new float[p.outputSize()]);
      dnn.poolingForward(VendorDnn.PoolingMode.MAX, p, dx.address(), pooled.address());

      assertClose(maxPool(p, x), download(context, pooled, p.outputSize()), "max pooling");
    }
  }

  private static float[] convolve(Conv2dGeometry g, float[] x, float[] w) {
    int oh = g.outHeight();
    int ow = g.outWidth();
    float[] y = new float[g.outputSize()];
    for (int n = 0; n < g.batch(); n++) {
      for (int k = 0; k < g.outChannels(); k++) {
        for (int i = 0; i < oh; i++) {
          for (int j = 0; j < ow; j++) {
            float sum = 0;
            for (int c = 0; c < g.inChannels(); c++) {
              for (int r = 0; r < g.kernelHeight(); r++) {
                for (int s = 0; s < g.kernelWidth(); s++) {
                  int h = i * g.strideHeight() - g.padHeight() + r * g.dilationHeight();
                  int v = j * g.strideWidth() - g.padWidth() + s * g.dilationWidth();
                  if (h >= 0 && h < g.inHeight() && v >= 0 && v < g.inWidth()) {
                    float input =
                        x[((n * g.inChannels() + c) * g.inHeight() + h) * g.inWidth() + v];
                    float weight =
                        w[((k * g.inChannels() + c) * g.kernelHeight() + r) * g.kernelWidth() + s];
                    sum += input * weight;
                  }
                }
              }
            }
            y[((n * g.outChannels() + k) * oh + i) * ow + j] = sum;
          }
        }
      }
    }
    return y;
  }

  private static float[] maxPool(Pool2dGeometry p, float[] x) {
    int oh = p.outHeight();
    int ow = p.outWidth();
    float[] y = new float[p.outputSize()];
    for (int plane = 0; plane < p.batch() * p.channels(); plane++) {
      for (int i = 0; i < oh; i++) {
        for (int j = 0; j < ow; j++) {
          float max = Float.NEGATIVE_INFINITY;
          for (int r = 0; r < p.kernelHeight(); r++) {
            for (int s = 0; s < p.kernelWidth(); s++) {
              int h = i * p.strideHeight() - p.padHeight() + r;
              int v = j * p.strideWidth() - p.padWidth() + s;
              if (h >= 0 && h < p.inHeight() && v >= 0 && v < p.inWidth()) {
                max = Math.max(max, x[(plane * p.inHeight() + h) * p.inWidth() + v]);
              }
            }
          }
          y[(plane * oh + i) * ow + j] = max;
        }
      }
    }
    return y;
  }
}
