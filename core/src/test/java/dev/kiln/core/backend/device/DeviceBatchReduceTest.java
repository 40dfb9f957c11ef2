package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.backend.cpu.Gemm;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceBatchReduce} against a loop of {@link Gemm} products run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceBatchReduceTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** Floats between consecutive matrices of an operand that is not shared. */
  private static final int GAP = 3;

  private static final int M = 9;
  private static final int N = 14;

  /**
   * Steps per product that make the default sum of 4 products 1332 steps, two slices of 672 on the
   * emulator's 132 multiprocessors, so the first slice ends inside the third product.
   */
  private static final int LONG_K = 333;

  /** Steps per product that make the default sum of 4 products one slice of 148 steps. */
  private static final int SHORT_K = 37;

  /** One sum of products: its operands, their strides, and the float64 reference. */
  private record Sum(int k, int batches, float[] a, long strideA, float[] b, long strideB) {

    /** Returns c plus the sum of the products, or the sum alone, computed in float64. */
    Storage expected(float[] c, boolean accumulate) {
      Storage expected = accumulate ? f64(c) : f64(M * N);
      for (int i = 0; i < batches; i++) {
        Gemm.gemm(
            false,
            false,
            M,
            N,
            k,
            f64(a),
            (int) (i * strideA),
            f64(b),
            (int) (i * strideB),
            expected,
            0,
            accumulate || i > 0);
      }
      return expected;
    }
  }

  /** Returns 4 products of M x N x k with random operands, A shared where {@code sharedA}. */
  private static Sum randomSum(Random random, int k, boolean sharedA) {
    int batches = 4;
    long strideA = sharedA ? 0 : M * k + GAP;
    long strideB = k * N + GAP;
    float[] a = randomFloats(random, (int) ((batches - 1) * strideA + M * k));
    float[] b = randomFloats(random, (int) ((batches - 1) * strideB + k * N));
    return new Sum(k, batches, a, strideA, b, strideB);
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sumMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBatchReduce reduce = new DeviceBatchReduce(runtime, new DeviceMatmul(runtime));
    Random random = new Random(DeviceTestSupport.SEED);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (int k : new int[] {LONG_K, SHORT_K}) {
        for (int variant = 0; variant < 4; variant++) {
          boolean transA = (variant & 1) != 0;
          boolean transB = (variant & 2) != 0;
          boolean accumulate = variant == 1 || variant == 2;
          boolean sharedA = variant >= 2;
          Sum sum = randomSum(random, k, sharedA);
          float[] c = randomFloats(random, M * N);
          DeviceBuffer deviceC = accumulate ? buffers.of(c) : buffers.filled(M * N);
          // The reference multiplies the plain matrices, so an operand that the device reads
          // transposed is stored as the transpose of the plain one.
          float[] a = transA ? transposeEach(sum.a(), sum.strideA(), sum.batches(), M, k) : sum.a();
          float[] b = transB ? transposeEach(sum.b(), sum.strideB(), sum.batches(), k, N) : sum.b();
          reduce.gemm(
              transA,
              transB,
              M,
              N,
              k,
              sum.batches(),
              buffers.of(a),
              sum.strideA(),
              buffers.of(b),
              sum.strideB(),
              deviceC,
              accumulate);

          String quantity =
              String.format(
                  "sum of %d products of k=%d, transA=%b transB=%b accumulate=%b sharedA=%b",
                  sum.batches(), k, transA, transB, accumulate, sharedA);
          assertClose(
              device, quantity, sum.expected(c, accumulate), buffers.read(deviceC, M * N), SUMMED);
        }
      }
    }
  }

  /**
   * Returns a copy of {@code values} in which each of the {@code batches} matrices of rows x cols,
   * matrix i starting at i * stride, is stored transposed, as cols x rows. Gaps keep their values.
   */
  private static float[] transposeEach(
      float[] values, long stride, int batches, int rows, int cols) {
    float[] transposed = values.clone();
    int matrices = stride == 0 ? 1 : batches;
    for (int i = 0; i < matrices; i++) {
      int offset = (int) (i * stride);
      for (int r = 0; r < rows; r++) {
        for (int col = 0; col < cols; col++) {
          transposed[offset + col * rows + r] = values[offset + r * cols + col];
        }
      }
    }
    return transposed;
  }

  @Test
  void ownKernelsLaunchPerSum() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceBatchReduce reduce = new DeviceBatchReduce(runtime, new DeviceMatmul(runtime));
    Random random = new Random(DeviceTestSupport.SEED);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      Map<String, Long> slicedThenSummed =
          Map.of("kiln_matmul_tiled_slices", 1L, "kiln_matmul_sum_slices", 1L);
      assertEquals(slicedThenSummed, launches(runtime, reduce, buffers, random, LONG_K, false));
      assertEquals(slicedThenSummed, launches(runtime, reduce, buffers, random, SHORT_K, true));
      // One slice written straight into C, with no sum after it.
      assertEquals(
          Map.of("kiln_matmul_tiled_slices", 1L),
          launches(runtime, reduce, buffers, random, SHORT_K, false));
    }
  }

  /** Returns the launches by kernel of one sum of 4 products of k steps. */
  private static Map<String, Long> launches(
      DeviceRuntime runtime,
      DeviceBatchReduce reduce,
      DeviceTestSupport.Buffers buffers,
      Random random,
      int k,
      boolean accumulate) {
    Sum sum = randomSum(random, k, false);
    DeviceBuffer a = buffers.of(sum.a());
    DeviceBuffer b = buffers.of(sum.b());
    DeviceBuffer c = buffers.filled(M * N);
    DeviceWork before = runtime.work();
    reduce.gemm(
        false, false, M, N, k, sum.batches(), a, sum.strideA(), b, sum.strideB(), c, accumulate);
    return runtime.work().minus(before).launchesByKernel();
  }

  @Test
  void singleProductIsTheDefaultProduct() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    DeviceBatchReduce reduce = new DeviceBatchReduce(runtime, matmul);
    Random random = new Random(DeviceTestSupport.SEED);
    // k = 1024 is long enough for the default product to cut it into two slices.
    int k = 1024;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.of(randomFloats(random, M * k));
      DeviceBuffer b = buffers.of(randomFloats(random, k * N));
      DeviceBuffer fromGemm = buffers.filled(M * N);
      DeviceBuffer fromSum = buffers.filled(M * N);
      matmul.gemm(false, false, M, N, k, a, b, fromGemm, false);
      reduce.gemm(false, false, M, N, k, 1, a, 0, b, 0, fromSum, false);

      assertArrayEquals(buffers.read(fromGemm, M * N), buffers.read(fromSum, M * N));
    }
  }

  @Test
  void emptySumWritesZeros() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceBatchReduce reduce = new DeviceBatchReduce(runtime, new DeviceMatmul(runtime));
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer unused = buffers.filled(1);
      DeviceBuffer noProducts = buffers.filled(M * N);
      DeviceBuffer noSteps = buffers.filled(M * N);
      DeviceBuffer accumulated = buffers.of(new float[M * N]);
      runtime.copyToDevice(new float[] {7f}, 0, accumulated, 0, 1);
      reduce.gemm(false, false, M, N, 5, 0, unused, 0, unused, 0, noProducts, false);
      reduce.gemm(false, false, M, N, 0, 3, unused, 0, unused, 0, noSteps, false);
      reduce.gemm(false, false, M, N, 0, 3, unused, 0, unused, 0, accumulated, true);

      assertArrayEquals(new float[M * N], buffers.read(noProducts, M * N), "no products");
      assertArrayEquals(new float[M * N], buffers.read(noSteps, M * N), "k = 0");
      assertEquals(7f, buffers.read(accumulated, 1)[0], "an empty sum leaves an accumulated C");
    }
  }

  @Test
  void cublasSumIsOneCallPerChunk() {
    DeviceRuntime runtime = runtime("emulated");
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceMatmul vendor = DeviceKernels.over(runtime, blas, null, "a host stand-in").matmul();
    DeviceMatmul kiln = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    Sum sum = randomSum(random, SHORT_K, true);
    float[] start = randomFloats(random, M * N);
    // Scratch for two of the four products, so the batch is cut into two chunks.
    DeviceBatchReduce[] reduces = {
      new DeviceBatchReduce(runtime, kiln),
      new DeviceBatchReduce(runtime, vendor),
      new DeviceBatchReduce(runtime, vendor, 2L * M * N)
    };
    DeviceWork[] work = new DeviceWork[reduces.length];
    float[][] results = new float[reduces.length][];
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.of(sum.a());
      DeviceBuffer b = buffers.of(sum.b());
      for (int i = 0; i < reduces.length; i++) {
        DeviceBuffer c = buffers.of(start);
        DeviceWork before = runtime.work();
        reduces[i].gemm(
            false, false, M, N, SHORT_K, sum.batches(), a, 0, b, sum.strideB(), c, true);
        work[i] = runtime.work().minus(before);
        results[i] = buffers.read(c, M * N);
      }
    }

    String call = "cublas.sgemmRowMajorStridedBatched";
    assertEquals(Map.of(call, 1L), work[1].libraryCallsByFunction(), "one chunk");
    assertEquals(Map.of("kiln_matmul_sum_slices", 1L), work[1].launchesByKernel(), "one chunk");
    assertEquals(Map.of(call, 2L), work[2].libraryCallsByFunction(), "two chunks");
    assertEquals(Map.of("kiln_matmul_sum_slices", 2L), work[2].launchesByKernel(), "two chunks");
    assertEquals(
        List.of("sgemmStridedBatched", "sgemmStridedBatched", "sgemmStridedBatched"), blas.calls);
    Storage expected = sum.expected(start, true);
    for (int i = 0; i < reduces.length; i++) {
      assertClose("emulated", "sum by launcher " + i, expected, results[i], SUMMED);
    }
  }
}
