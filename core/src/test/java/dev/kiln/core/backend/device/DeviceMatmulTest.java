package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cpu.Gemm;
import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import dev.kiln.kernels.Dim3;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceMatmul} against {@link Gemm} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceMatmulTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /**
   * m and n cross the 64-wide tile edge, and k is not a multiple of the 16-deep or 8-deep panel.
   */
  private static final int M = 67;

  private static final int N = 70;
  private static final int K = 19;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void everyKernelMatchesTheCpuForEveryTransposition(String device) {
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

  /**
   * Returns the smallest m for which one block row per row tile would need a gridDim.y of 65536,
   * one more than CUDA allows: 65535 tiles of the kernel's rows plus one row.
   */
  private static int firstRowsPastGridLimit(DeviceMatmul.Kernel kernel) {
    return LaunchShapes.MAX_GRID_Y * kernel.tile() + 1;
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void slicedProductsMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    // k = 300 in slices of 64: four full slices and one of 44 steps.
    int k = 300;
    float[] a = randomFloats(random, M * k);
    float[] b = randomFloats(random, k * N);
    float[] c = randomFloats(random, M * N);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (int variant = 0; variant < 4; variant++) {
        boolean transA = (variant & 1) != 0;
        boolean transB = (variant & 2) != 0;
        boolean accumulate = variant == 1 || variant == 2;
        DeviceBuffer deviceC = accumulate ? buffers.of(c) : buffers.filled(M * N);
        matmul.gemmInSlices(
            64, transA, transB, M, N, k, buffers.of(a), buffers.of(b), deviceC, accumulate);

        Storage expected = accumulate ? f64(c) : f64(M * N);
        Gemm.gemm(transA, transB, M, N, k, f64(a), 0, f64(b), 0, expected, 0, accumulate);
        String quantity =
            String.format(
                "sliced gemm transA=%b transB=%b accumulate=%b", transA, transB, accumulate);
        assertClose(device, quantity, expected, buffers.read(deviceC, M * N), SUMMED);
      }
    }
  }

  @Test
  void sliceDepthFollowsTilesAndDepth() {
    int h200 = 132;
    // A convolution's weight gradient: 32 x 25 is one tile, k = 48400 positions. One wave of 528
    // blocks would take 528 slices, but slices of at least 512 steps allow only 94, rounded up to
    // whole 16-step panels: 528.
    assertEquals(528, MatmulHeuristics.sliceDepthFor(32, 25, 48400, h200));
    // A linear layer's output for a batch of 64 and 1000 features, with 43264 inputs: 16 tiles,
    // so 33 slices of at least 1311 steps, rounded up to 1312.
    assertEquals(1312, MatmulHeuristics.sliceDepthFor(64, 1000, 43264, h200));
    // One tile and k = 1024: two slices of 512. One step less leaves no room for two.
    assertEquals(512, MatmulHeuristics.sliceDepthFor(64, 64, 1024, h200));
    assertEquals(0, MatmulHeuristics.sliceDepthFor(64, 64, 1023, h200));
    // 132 tiles of 64 x 64 need 4 slices to reach 528 blocks.
    assertEquals(1024, MatmulHeuristics.sliceDepthFor(64 * 132, 64, 4096, h200));
    // 528 tiles or more fill the GPU without slices.
    assertEquals(0, MatmulHeuristics.sliceDepthFor(64 * 528, 64, 1 << 20, h200));
    assertEquals(0, MatmulHeuristics.sliceDepthFor(4096, 4096, 4096, h200));
  }

  @Test
  void sliceDepthFollowsMultiprocessors() {
    // The same 16 tiles of the linear layer on an A100's 108 multiprocessors: a wave of 432
    // blocks is 27 slices of 1603 steps, rounded up to 1616.
    assertEquals(1616, MatmulHeuristics.sliceDepthFor(64, 1000, 43264, 108));
    // 132 tiles already fill one wave of a GPU of 33 multiprocessors, 4 blocks each, so no slices.
    assertEquals(0, MatmulHeuristics.sliceDepthFor(64 * 132, 64, 4096, 33));
    // One multiprocessor runs 4 blocks, so one tile gets 4 slices.
    assertEquals(12112, MatmulHeuristics.sliceDepthFor(32, 25, 48400, 1));
    assertThrows(
        IllegalArgumentException.class, () -> MatmulHeuristics.sliceDepthFor(1, 1, 4096, 0));
    // However many multiprocessors, the slices stay within a grid's 65535 along z.
    int k = Integer.MAX_VALUE - 16;
    int depth = MatmulHeuristics.sliceDepthFor(1, 1, k, Integer.MAX_VALUE);
    assertTrue((k + (long) depth - 1) / depth <= 65535, "depth " + depth);
  }

  @Test
  void defaultProductCutsLongDepthIntoSlices() {
    // On the emulator's 132 multiprocessors: 4096 / 512 = 8 slices of 512 steps, then one sum.
    RecordingRuntime recorder = new RecordingRuntime(runtime("emulated"));
    recordWeightGradient(recorder, 4096);
    assertEquals(List.of("kiln_matmul_tiled_slices", "kiln_matmul_sum_slices"), recorder.kernels);
    assertEquals(new Dim3(1, 1, 8), recorder.grids.get(0));

    // A device of one multiprocessor runs 4 blocks at once, so 4 slices of 1024 steps.
    RecordingRuntime small = new RecordingRuntime(runtime("emulated"), 1);
    recordWeightGradient(small, 4096);
    assertEquals(new Dim3(1, 1, 4), small.grids.get(0));
  }

  /** Records the default product of a 32 x 25 weight gradient summed over {@code k} positions. */
  private static void recordWeightGradient(RecordingRuntime recorder, int k) {
    DeviceMatmul matmul = new DeviceMatmul(recorder);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(recorder)) {
      matmul.gemm(
          false,
          true,
          32,
          25,
          k,
          buffers.filled(32 * k),
          buffers.filled(25 * k),
          buffers.filled(32 * 25),
          false);
    }
  }

  @Test
  void slicedProductRejectsInvalidSlices() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.filled(70_000);
      DeviceBuffer b = buffers.filled(70_000);
      DeviceBuffer c = buffers.filled(1);
      IllegalArgumentException zero =
          assertThrows(
              IllegalArgumentException.class,
              () -> matmul.gemmInSlices(0, false, false, 1, 1, 70_000, a, b, c, false));
      assertTrue(zero.getMessage().contains("at least 1, got 0"), zero.getMessage());
      IllegalArgumentException tooDeep =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  matmul.gemm(
                      DeviceMatmul.Kernel.TILED,
                      false,
                      false,
                      1,
                      1,
                      DeviceMatmul.MAX_DEPTH + 1,
                      a,
                      b,
                      c,
                      false));
      assertTrue(tooDeep.getMessage().contains("split the sum"), tooDeep.getMessage());
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void kernelsAgreeOnManyBlocks(String device) {
    assumeFalse(
        device.equals("emulated"),
        "the emulator runs one block at a time and would need minutes for these products;"
            + " productMatchesReference in MatmulKernelsTest covers the same code on small ones");
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    // 2100 is no multiple of 64 or 128, and 289 blocks of the 128 x 128 kernel run two to a
    // multiprocessor, as they never do on the emulator.
    int size = 2100;
    int k = 1000;
    float[] a = randomFloats(random, size * k);
    float[] b = randomFloats(random, k * size);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceA = buffers.of(a);
      DeviceBuffer deviceB = buffers.of(b);
      for (int variant = 0; variant < 4; variant++) {
        boolean transA = (variant & 1) != 0;
        boolean transB = (variant & 2) != 0;
        DeviceBuffer naive = buffers.filled(size * size);
        matmul.gemm(
            DeviceMatmul.Kernel.NAIVE,
            transA,
            transB,
            size,
            size,
            k,
            deviceA,
            deviceB,
            naive,
            false);
        Storage expected = f64(buffers.read(naive, size * size));
        for (DeviceMatmul.Kernel kernel :
            new DeviceMatmul.Kernel[] {DeviceMatmul.Kernel.TILED, DeviceMatmul.Kernel.TILED_128}) {
          DeviceBuffer c = buffers.filled(size * size);
          matmul.gemm(kernel, transA, transB, size, size, k, deviceA, deviceB, c, false);
          String quantity =
              String.format("%s against NAIVE, transA=%b transB=%b", kernel, transA, transB);
          assertClose(device, quantity, expected, buffers.read(c, size * size), SUMMED);
        }
        // One 64 x 64 tile of C over all of k = 40000, cut into 79 slices of 512.
        DeviceBuffer sliced = buffers.filled(64 * 64);
        DeviceBuffer reference = buffers.filled(64 * 64);
        int depth = 40_000;
        DeviceBuffer longA = buffers.of(randomFloats(random, 64 * depth));
        DeviceBuffer longB = buffers.of(randomFloats(random, depth * 64));
        matmul.gemmInSlices(512, transA, transB, 64, 64, depth, longA, longB, sliced, false);
        matmul.gemm(
            DeviceMatmul.Kernel.NAIVE,
            transA,
            transB,
            64,
            64,
            depth,
            longA,
            longB,
            reference,
            false);
        assertClose(
            device,
            "sliced against NAIVE, transA=" + transA + " transB=" + transB,
            f64(buffers.read(reference, 64 * 64)),
            buffers.read(sliced, 64 * 64),
            SUMMED);
      }
    }
  }

  @Test
  void bigTilesOnlyForLargeProducts() {
    int h200 = 132;
    // 4096 x 4096 is 1024 tiles of 128 x 128. On an H200, two waves of 2 blocks per
    // multiprocessor are 528 blocks: 2048 x 4096 is 512 tiles, below that, and 2048 x 4224 is 528.
    assertEquals(DeviceMatmul.Kernel.TILED_128, MatmulHeuristics.defaultKernel(4096, 4096, h200));
    assertEquals(DeviceMatmul.Kernel.TILED, MatmulHeuristics.defaultKernel(2048, 4096, h200));
    assertEquals(DeviceMatmul.Kernel.TILED_128, MatmulHeuristics.defaultKernel(2048, 4224, h200));
    // An A100's 108 multiprocessors make two waves of 432 blocks, which 512 tiles pass.
    assertEquals(DeviceMatmul.Kernel.TILED_128, MatmulHeuristics.defaultKernel(2048, 4096, 108));
    // A batch of 64 rows, however wide, stays on the 64 x 64 kernel.
    assertEquals(DeviceMatmul.Kernel.TILED, MatmulHeuristics.defaultKernel(64, 1 << 20, h200));
    assertEquals(DeviceMatmul.Kernel.TILED, MatmulHeuristics.defaultKernel(1 << 20, 127, h200));
    assertThrows(IllegalArgumentException.class, () -> MatmulHeuristics.defaultKernel(128, 128, 0));

    // The launch itself goes to the chosen kernel's function with its tile's grid.
    RecordingRuntime recorder = new RecordingRuntime(runtime("emulated"));
    DeviceMatmul matmul = new DeviceMatmul(recorder);
    int m = 128 * 528;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(recorder)) {
      matmul.gemm(
          false,
          false,
          m,
          128,
          1,
          buffers.filled(m),
          buffers.filled(128),
          buffers.filled(m * 128),
          false);
    }
    assertEquals("kiln_matmul_tiled128", recorder.lastKernel);
    assertEquals(Dim3.of(1, 528), recorder.lastGrid);
  }

  @Test
  void launchPastGridLimitKeepsGridWithinCuda() {
    // Running these launches on the emulator takes minutes (about 590 s for both on a loaded
    // 2-core machine), so this test records the launches instead of running them, and
    // MatmulKernelsTest runs the kernels' row-tile loop on small grids.
    RecordingRuntime recorder = new RecordingRuntime(runtime("emulated"));
    DeviceMatmul matmul = new DeviceMatmul(recorder);
    for (DeviceMatmul.Kernel kernel : DeviceMatmul.Kernel.values()) {
      int m = firstRowsPastGridLimit(kernel);
      try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(recorder)) {
        DeviceBuffer a = buffers.filled(m);
        DeviceBuffer c = buffers.filled(m);
        matmul.gemm(kernel, false, false, m, 1, 1, a, buffers.filled(1), c, false);
      }
      assertEquals(LaunchShapes.MAX_GRID_Y, recorder.lastGrid.y(), kernel + " gemm with m = " + m);
      assertEquals(1, recorder.lastGrid.x(), kernel + " gemm with n = 1");
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void rowsPastGridLimitAreComputed(String device) {
    assumeFalse(
        device.equals("emulated"),
        "the emulator needs minutes for 131070 blocks; launchPastGridLimitKeepsGridWithinCuda and"
            + " MatmulKernelsTest cover it there");
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    for (DeviceMatmul.Kernel kernel : DeviceMatmul.Kernel.values()) {
      int m = firstRowsPastGridLimit(kernel);
      // C = A B with n = k = 1: row i of C is a[i] * 2, which float32 computes exactly.
      float[] a = new float[m];
      for (int i = 0; i < m; i++) {
        a[i] = i % 4099;
      }
      try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
        DeviceBuffer c = buffers.filled(m);
        DeviceBuffer b = buffers.of(new float[] {2f});
        matmul.gemm(kernel, false, false, m, 1, 1, buffers.of(a), b, c, false);
        float[] actual = buffers.read(c, m);
        for (int i = 0; i < m; i++) {
          if (actual[i] != 2f * a[i]) {
            fail(
                String.format(
                    "%s: %s gemm with m = %d: C[%d] is %s, expected %s",
                    device, kernel, m, i, actual[i], 2f * a[i]));
          }
        }
      }
    }
  }

  /** Floats between consecutive matrices of an operand that is not shared. */
  private static final int GAP = 5;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void stridedBatchesMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    int batches = 3;
    int m = 67;
    int n = 20;
    int k = 19;
    // null stands for the default product, which chooses its kernel.
    DeviceMatmul.Kernel[] kernels = {
      null, DeviceMatmul.Kernel.NAIVE, DeviceMatmul.Kernel.TILED, DeviceMatmul.Kernel.TILED_128
    };
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (DeviceMatmul.Kernel kernel : kernels) {
        for (int variant = 0; variant < 4; variant++) {
          // A shared, as a convolution's weight in the forward pass, B shared, or neither.
          for (int sharing = 0; sharing < 3; sharing++) {
            boolean transA = (variant & 1) != 0;
            boolean transB = (variant & 2) != 0;
            boolean accumulate = (variant + sharing) % 2 == 1;
            long strideA = sharing == 1 ? 0 : m * k + GAP;
            long strideB = sharing == 2 ? 0 : k * n + GAP;
            long strideC = m * n + GAP;
            float[] a = randomFloats(random, (int) ((batches - 1) * strideA + m * k));
            float[] b = randomFloats(random, (int) ((batches - 1) * strideB + k * n));
            float[] c = randomFloats(random, (int) ((batches - 1) * strideC + m * n));
            DeviceBuffer deviceC = buffers.of(c);
            DeviceBuffer deviceA = buffers.of(a);
            DeviceBuffer deviceB = buffers.of(b);
            if (kernel == null) {
              matmul.batchedGemm(
                  transA,
                  transB,
                  m,
                  n,
                  k,
                  batches,
                  deviceA,
                  strideA,
                  deviceB,
                  strideB,
                  deviceC,
                  strideC,
                  accumulate);
            } else {
              matmul.batchedGemm(
                  kernel,
                  transA,
                  transB,
                  m,
                  n,
                  k,
                  batches,
                  deviceA,
                  strideA,
                  deviceB,
                  strideB,
                  deviceC,
                  strideC,
                  accumulate);
            }

            // Product i reads and writes its matrices at i times each stride. The gaps of C keep
            // their values.
            Storage expected = f64(c);
            for (int i = 0; i < batches; i++) {
              Gemm.gemm(
                  transA,
                  transB,
                  m,
                  n,
                  k,
                  f64(a),
                  (int) (i * strideA),
                  f64(b),
                  (int) (i * strideB),
                  expected,
                  (int) (i * strideC),
                  accumulate);
            }
            String quantity =
                String.format(
                    "%s batch transA=%b transB=%b accumulate=%b strides=(%d, %d, %d)",
                    kernel == null ? "default" : kernel,
                    transA,
                    transB,
                    accumulate,
                    strideA,
                    strideB,
                    strideC);
            assertClose(device, quantity, expected, buffers.read(deviceC, c.length), SUMMED);
          }
        }
      }
    }
  }

  @Test
  void batchIsOneLaunch() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    int batches = 8;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.filled(batches * 4 * 3);
      DeviceBuffer b = buffers.filled(batches * 3 * 5);
      DeviceBuffer c = buffers.filled(batches * 4 * 5);
      DeviceWork before = runtime.work();
      matmul.batchedGemm(false, false, 4, 5, 3, batches, a, b, c, false);
      DeviceWork packed = runtime.work().minus(before);
      before = runtime.work();
      matmul.batchedGemm(false, true, 4, 5, 3, batches, a, 0, b, 15, c, 20, true);
      DeviceWork shared = runtime.work().minus(before);

      assertEquals(Map.of("kiln_matmul_tiled", 1L), packed.launchesByKernel(), "packed batch");
      assertEquals(Map.of("kiln_matmul_tiled", 1L), shared.launchesByKernel(), "shared A");
    }
  }

  @Test
  void batchPastGridLimitLoopsAlongZ() {
    // The launches are recorded, not run: the emulator would need minutes for 65535 blocks.
    // MatmulKernelsTest runs the kernels' loops over z on small grids.
    RecordingRuntime recorder = new RecordingRuntime(runtime("emulated"));
    DeviceMatmul matmul = new DeviceMatmul(recorder);
    int batches = LaunchShapes.MAX_GRID_Z + 1;
    Dim3 capped = new Dim3(1, 1, LaunchShapes.MAX_GRID_Z);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(recorder)) {
      DeviceBuffer one = buffers.filled(1);
      DeviceBuffer c = buffers.filled(batches);
      matmul.batchedGemm(
          DeviceMatmul.Kernel.NAIVE, false, false, 1, 1, 1, batches, one, 0, one, 0, c, 1, false);
      assertEquals(capped, recorder.lastGrid, "naive batch of " + batches);
      matmul.batchedGemm(false, false, 1, 1, 1, batches, one, 0, one, 0, c, 1, false);
      assertEquals("kiln_matmul_tiled", recorder.lastKernel);
      assertEquals(capped, recorder.lastGrid, "default batch of " + batches);

      // k = 70000 in slices of 1: 70000 partial products, looped over 65535 layers.
      DeviceBuffer longA = buffers.filled(70_000);
      DeviceBuffer longB = buffers.filled(70_000);
      matmul.gemmInSlices(1, false, false, 1, 1, 70_000, longA, longB, one, false);
      assertEquals("kiln_matmul_tiled_slices", recorder.kernels.get(recorder.kernels.size() - 2));
      assertEquals(capped, recorder.grids.get(recorder.grids.size() - 2), "70000 slices");
    }
  }

  @Test
  void stridedBatchRejectsInvalidStrides() {
    DeviceRuntime runtime = runtime("emulated");
    DeviceMatmul matmul = new DeviceMatmul(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer any = buffers.filled(100);
      IllegalArgumentException overlap =
          assertThrows(
              IllegalArgumentException.class,
              () -> matmul.batchedGemm(false, false, 2, 3, 4, 2, any, 8, any, 12, any, 5, false));
      assertTrue(overlap.getMessage().contains("strideC = 5"), overlap.getMessage());
      assertTrue(overlap.getMessage().contains("at least 6"), overlap.getMessage());
      IllegalArgumentException negative =
          assertThrows(
              IllegalArgumentException.class,
              () -> matmul.batchedGemm(false, false, 2, 3, 4, 2, any, -8, any, 12, any, 6, false));
      assertTrue(negative.getMessage().contains("strideA=-8"), negative.getMessage());
      // B's second matrix would end at 30 * 3 + 12 = 102 floats, past the 100 of the slice.
      DeviceBuffer hundred = DeviceRuntime.slice(any, 0, 100);
      IllegalArgumentException small =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  matmul.batchedGemm(
                      false, false, 2, 3, 4, 4, hundred, 0, hundred, 30, hundred, 6, false));
      assertTrue(small.getMessage().contains("matrix B"), small.getMessage());
    }
  }

  @Test
  void stridedBatchRejectsHugeStride() {
    // The launches are recorded, not run, so that a check that lets such a stride through fails
    // here instead of sending a kernel to read far outside the buffer.
    RecordingRuntime recorder = new RecordingRuntime(runtime("emulated"));
    DeviceMatmul matmul = new DeviceMatmul(recorder);
    DeviceBatchReduce reduce = new DeviceBatchReduce(recorder, matmul);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(recorder)) {
      DeviceBuffer any = buffers.filled(100);
      // 2^62 floats are 2^64 bytes, which wraps to 0 in a long, and Long.MAX_VALUE floats plus a
      // matrix wrap to a negative count.
      for (long stride : new long[] {1L << 62, Long.MAX_VALUE, Long.MAX_VALUE / 3}) {
        IllegalArgumentException product =
            assertThrows(
                IllegalArgumentException.class,
                () ->
                    matmul.batchedGemm(
                        false, false, 2, 3, 4, 3, any, stride, any, 12, any, 6, false),
                "batched product with strideA = " + stride);
        assertTrue(product.getMessage().contains("matrix A"), product.getMessage());
        IllegalArgumentException output =
            assertThrows(
                IllegalArgumentException.class,
                () ->
                    matmul.batchedGemm(
                        false, false, 2, 3, 4, 3, any, 8, any, 12, any, stride, false),
                "batched product with strideC = " + stride);
        assertTrue(output.getMessage().contains("matrix C"), output.getMessage());
        IllegalArgumentException sum =
            assertThrows(
                IllegalArgumentException.class,
                () -> reduce.gemm(false, false, 2, 3, 4, 3, any, 8, any, stride, any, false),
                "batch sum with strideB = " + stride);
        assertTrue(sum.getMessage().contains("matrix B"), sum.getMessage());
      }
      assertTrue(recorder.kernels.isEmpty(), "launched " + recorder.kernels);
    }
  }

  @Test
  void batchSliceDepthFollowsStepsAndTiles() {
    int h200 = 132;
    // lenet-20m's first conv, weight gradient at batch 64: C is 32 x 25, one tile, and the sum has
    // 64 * 48400 steps. One wave of 528 blocks is 528 slices of 5867 steps, rounded up to 5872.
    assertEquals(5872, MatmulHeuristics.batchSliceDepthFor(32, 25, 48400, 64, h200));
    // Its fourth conv: C is 256 x 1152, 72 tiles, so 8 slices of the 64 * 144 steps.
    assertEquals(1152, MatmulHeuristics.batchSliceDepthFor(256, 1152, 144, 64, h200));
    // Too few steps for two slices of 512: one slice of them all, rounded up to 16.
    assertEquals(112, MatmulHeuristics.batchSliceDepthFor(4, 4, 50, 2, h200));
    // A C that fills the wave by itself: one slice.
    assertEquals(64 * 4096, MatmulHeuristics.batchSliceDepthFor(4096, 4096, 4096, 64, h200));
    // However many steps, a slice fits the kernel's int depth.
    int depth = MatmulHeuristics.batchSliceDepthFor(4096, 4096, DeviceMatmul.MAX_DEPTH, 65535, 1);
    assertTrue(depth > 0, "depth " + depth);
    assertTrue(depth <= MatmulHeuristics.MAX_SLICE_DEPTH, "depth " + depth);
    assertEquals(0, depth % MatmulHeuristics.PANEL_DEPTH, "depth " + depth);
    assertThrows(
        IllegalArgumentException.class, () -> MatmulHeuristics.batchSliceDepthFor(4, 4, 0, 3, 1));
  }

  @Test
  void batchKernelCountsEveryProduct() {
    int h200 = 132;
    // 2048 x 4096 is 512 tiles of 128 x 128, below the 528 of two waves, but two of them are 1024.
    assertEquals(DeviceMatmul.Kernel.TILED, MatmulHeuristics.defaultKernel(2048, 4096, 1, h200));
    assertEquals(
        DeviceMatmul.Kernel.TILED_128, MatmulHeuristics.defaultKernel(2048, 4096, 2, h200));
    // Fewer than 128 rows stay on the 64 x 64 kernel, however many products.
    assertEquals(DeviceMatmul.Kernel.TILED, MatmulHeuristics.defaultKernel(64, 4096, 1024, h200));
  }

  /**
   * A runtime that allocates and copies through another one, and records launches unrun. It reports
   * the other runtime's multiprocessors unless given a number of its own.
   */
  private static final class RecordingRuntime implements DeviceRuntime {
    private final DeviceRuntime memory;
    private final int multiprocessors;
    String lastKernel;
    Dim3 lastGrid;
    final List<String> kernels = new ArrayList<>();
    final List<Dim3> grids = new ArrayList<>();

    RecordingRuntime(DeviceRuntime memory) {
      this(memory, memory.multiprocessors());
    }

    RecordingRuntime(DeviceRuntime memory, int multiprocessors) {
      this.memory = memory;
      this.multiprocessors = multiprocessors;
    }

    @Override
    public int multiprocessors() {
      return multiprocessors;
    }

    @Override
    public String name() {
      return "recording " + memory.name();
    }

    @Override
    public CachingAllocator allocator() {
      return memory.allocator();
    }

    @Override
    public ConstantInts constants() {
      return memory.constants();
    }

    @Override
    public DeviceCounters counters() {
      return memory.counters();
    }

    @Override
    public void copyToDevice(
        float[] src, int srcIndex, DeviceBuffer dst, long dstIndex, int count) {
      memory.copyToDevice(src, srcIndex, dst, dstIndex, count);
    }

    @Override
    public void copyToHost(DeviceBuffer src, long srcIndex, float[] dst, int dstIndex, int count) {
      memory.copyToHost(src, srcIndex, dst, dstIndex, count);
    }

    @Override
    public void copyWithinDevice(
        DeviceBuffer src, long srcIndex, DeviceBuffer dst, long dstIndex, long count) {
      memory.copyWithinDevice(src, srcIndex, dst, dstIndex, count);
    }

    @Override
    public void launch(
        String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args) {
      lastKernel = kernel;
      lastGrid = grid;
      kernels.add(kernel);
      grids.add(grid);
    }

    @Override
    public void synchronize() {
      memory.synchronize();
    }

    @Override
    public void close() {}
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
