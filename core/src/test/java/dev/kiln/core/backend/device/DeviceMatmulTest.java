package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Gemm;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.tensor.Storage;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceMatmul} against {@link Gemm} run in float64. */
class DeviceMatmulTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** m and n cross the 64-wide tile edge, and k is not a multiple of the 16-deep panel. */
  private static final int M = 67;

  private static final int N = 70;
  private static final int K = 19;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void bothKernelsMatchTheCpuForEveryTransposition(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    float[] a = randomFloats(random, M * K);
    float[] b = randomFloats(random, K * N);
    float[] c = randomFloats(random, M * N);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceA = buffers.of(a);
      DeviceBuffer deviceB = buffers.of(b);
      for (DeviceMatmul.Kernel kernel : DeviceMatmul.Kernel.values()) {
        for (int variant = 0; variant < 4; variant++) {
          boolean transA = (variant & 1) != 0;
          boolean transB = (variant & 2) != 0;
          // Accumulate in two of the cases, into a C that starts as c.
          boolean accumulate = variant == 1 || variant == 2;
          DeviceBuffer deviceC = accumulate ? buffers.of(c) : buffers.filled(M * N);
          matmul.gemm(kernel, transA, transB, M, N, K, deviceA, deviceB, deviceC, accumulate);

          Storage expected = accumulate ? f64(c) : f64(M * N);
          Gemm.gemm(transA, transB, M, N, K, f64(a), 0, f64(b), 0, expected, 0, accumulate);
          String quantity =
              String.format(
                  "%s gemm transA=%b transB=%b accumulate=%b", kernel, transA, transB, accumulate);
          assertClose(device, quantity, expected, buffers.read(deviceC, M * N), SUMMED);
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void batchedProductsMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    int batches = 3;
    int m = 5;
    int n = 7;
    int k = 4;
    float[] a = randomFloats(random, batches * m * k);
    float[] b = randomFloats(random, batches * k * n);
    float[] c = randomFloats(random, batches * m * n);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (int variant = 0; variant < 4; variant++) {
        boolean transA = (variant & 1) != 0;
        boolean transB = (variant & 2) != 0;
        boolean accumulate = variant == 1;
        DeviceBuffer deviceC = accumulate ? buffers.of(c) : buffers.filled(batches * m * n);
        matmul.batchedGemm(
            transA, transB, m, n, k, batches, buffers.of(a), buffers.of(b), deviceC, accumulate);

        // Matrix i of each operand starts right after matrix i - 1.
        Storage expected = accumulate ? f64(c) : f64(batches * m * n);
        for (int i = 0; i < batches; i++) {
          Gemm.gemm(
              transA,
              transB,
              m,
              n,
              k,
              f64(a),
              i * m * k,
              f64(b),
              i * k * n,
              expected,
              i * m * n,
              accumulate);
        }
        String quantity =
            String.format(
                "batched gemm transA=%b transB=%b accumulate=%b", transA, transB, accumulate);
        assertClose(device, quantity, expected, buffers.read(deviceC, batches * m * n), SUMMED);
      }

      // Room for two matrices of A but not three. The slice is exact, where the allocator would
      // round a block up to its size class.
      DeviceBuffer small = DeviceRuntime.slice(buffers.filled(2 * m * k), 0, 2 * m * k);
      DeviceBuffer anyB = buffers.of(b);
      DeviceBuffer anyC = buffers.filled(batches * m * n);
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> matmul.batchedGemm(false, false, m, n, k, batches, small, anyB, anyC, false));
      assertTrue(e.getMessage().contains("matrix A"), e.getMessage());
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void emptyDepthWritesZeros(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer c = buffers.filled(6);
      DeviceBuffer unused = buffers.filled(1);
      matmul.gemm(false, false, 2, 3, 0, unused, unused, c, false);
      double[] zeros = new double[6];
      Arrays.fill(zeros, 0.0);
      assertClose(device, "gemm with k = 0", zeros, buffers.read(c, 6), SUMMED);
    }
  }
}
