package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.flag;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.kernels.Dim3;

/**
 * Launches the matrix products of {@code matmul.cu}: C = op(A) op(B), or C += op(A) op(B), on
 * row-major float32 matrices, with the arguments of the CPU's {@code Gemm.gemm}.
 *
 * <p>op(A) is m x k, stored as m x k or, with {@code transA}, as k x m. op(B) is k x n, stored as k
 * x n or, with {@code transB}, as n x k. C is m x n and must not overlap A or B. Without {@code
 * accumulate} the old C is never read, so a NaN left in it cannot leak into the result.
 *
 * <p>Three kernels compute the same product. {@link Kernel#TILED} stages 64 x 16 and 16 x 64 panels
 * in shared memory and keeps a 4 x 4 block of C per thread in registers. {@link Kernel#TILED_128}
 * takes 128 x 128 tiles with an 8 x 8 block per thread, 16-byte shared-memory loads and
 * double-buffered panels, which suits large products. The default product chooses between these two
 * by the size of C. {@link Kernel#NAIVE} reads straight from global memory, one thread per element
 * of C: slow, but simple enough to check by eye, so it serves as a second opinion in tests.
 *
 * <p>A C of few tiles with a long k, such as a convolution's weight gradient, would leave most of a
 * GPU idle, because each block walks all of k. The default product then cuts k into slices (see
 * {@link #gemmInSlices}): {@code kiln_matmul_tiled_slices} multiplies each slice into a partial C,
 * and {@code kiln_matmul_sum_slices} adds the partials in a fixed order.
 *
 * <p>Every kernel also computes a batch of products of the same sizes in one launch, with the
 * products along the grid's z axis and an element stride per operand ({@link #batchedGemm(boolean,
 * boolean, int, int, int, int, DeviceBuffer, long, DeviceBuffer, long, DeviceBuffer, long,
 * boolean)}). A stride of 0 shares one matrix among all products, as a convolution's weight is
 * shared among the images of a batch. {@link DeviceBatchReduce} adds such a batch up into one C.
 *
 * <p>On a GPU where cuBLAS loads, a launcher built with a {@link VendorBlas} sends the products of
 * {@link #gemm(boolean, boolean, int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}
 * to {@code cublasSgemm} instead, and the batches of {@code batchedGemm} to {@code
 * cublasSgemmStridedBatched}, on the same stream. The overloads that name a {@link Kernel} always
 * run kiln's own kernel, so benchmarks and tests can compare the two.
 */
public final class DeviceMatmul {

  /**
   * The kernel that computes a product. Each launches blocks of 16 x 16 threads, and each block
   * computes a square tile of C.
   */
  public enum Kernel {
    /** {@code kiln_matmul_naive}: one thread per element of C, no shared memory. */
    NAIVE("kiln_matmul_naive", 16),
    /** {@code kiln_matmul_tiled}: 64 x 64 tiles of C through shared memory. */
    TILED("kiln_matmul_tiled", 64),
    /** {@code kiln_matmul_tiled128}: 128 x 128 tiles of C, 8 x 8 per thread. */
    TILED_128("kiln_matmul_tiled128", 128);

    private final String function;
    private final int tile;

    Kernel(String function, int tile) {
      this.function = function;
      this.tile = tile;
    }

    /** Returns the edge of the square tile of C that one block computes. */
    public int tile() {
      return tile;
    }
  }

  /** Threads along each side of a block of every kernel (16 x 16 = 256). */
  static final int BLOCK_SIDE = 16;

  /**
   * The largest k that kiln's kernels accept. Their loops over k step in panels of up to 16 with
   * int counters, which must not pass 2^31 - 1.
   */
  static final int MAX_DEPTH = Integer.MAX_VALUE - 16;

  private final DeviceRuntime runtime;
  private final VendorBlas blas;

  /** Creates the launcher for one device, which runs kiln's own kernels. */
  public DeviceMatmul(DeviceRuntime runtime) {
    this(runtime, null);
  }

  /**
   * Creates the launcher for one device that sends its default products to {@code blas}, or runs
   * kiln's tiled kernel where {@code blas} is null.
   */
  public DeviceMatmul(DeviceRuntime runtime, VendorBlas blas) {
    this.runtime = runtime;
    this.blas = blas;
  }

  /** Returns the cuBLAS binding that serves the default products, or null for kiln's kernel. */
  public VendorBlas vendor() {
    return blas;
  }

  /**
   * Computes C = op(A) op(B), or adds it to C with {@code accumulate}: with cuBLAS where this
   * launcher has it, else with kiln's kernels: in slices of k where {@link
   * MatmulHeuristics#sliceDepthFor} gives a depth, or with the tiled kernel that {@link
   * MatmulHeuristics#defaultKernel} chooses. cuBLAS gets beta = 1 to accumulate and beta = 0 to
   * overwrite; with beta = 0 it does not read C, as kiln's kernels do not.
   *
   * <p>A tiled kernel is launched once, with a (16, 16) block per tile of C, and fewer block rows
   * than row tiles where CUDA's grid limit requires it, so that one block then computes several
   * tiles. Every value a block stages in shared memory is reused 64 or 128 times, which is what
   * makes the product compute bound instead of memory bound. Does nothing for an empty C.
   */
  public void gemm(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      boolean accumulate) {
    if (blas == null) {
      ownProduct(transA, transB, m, n, k, a, b, c, accumulate);
      return;
    }
    requireMatrices(m, n, k, a, b, c);
    if (m == 0 || n == 0) {
      return;
    }
    blas.sgemmRowMajor(
        transA, transB, m, n, k, 1f, a.address(), b.address(), accumulate ? 1f : 0f, c.address());
    DeviceRuntime.keepReachable(a, b, c);
  }

  /**
   * Computes the product with kiln's kernels as the default product does without cuBLAS: in slices
   * of k where {@link MatmulHeuristics#sliceDepthFor} gives a depth, else with the kernel of {@link
   * MatmulHeuristics#defaultKernel}. Both choices follow the device's number of multiprocessors.
   */
  private void ownProduct(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      boolean accumulate) {
    requireMatrices(m, n, k, a, b, c);
    int multiprocessors = runtime.multiprocessors();
    int sliceDepth = MatmulHeuristics.sliceDepthFor(m, n, k, multiprocessors);
    if (sliceDepth > 0) {
      gemmInSlices(sliceDepth, transA, transB, m, n, k, a, b, c, accumulate);
    } else {
      gemm(
          MatmulHeuristics.defaultKernel(m, n, multiprocessors),
          transA,
          transB,
          m,
          n,
          k,
          a,
          b,
          c,
          accumulate);
    }
  }

  /**
   * Computes C = op(A) op(B), or adds it to C with {@code accumulate}, with k cut into slices of
   * {@code sliceDepth} steps: {@code kiln_matmul_tiled_slices} writes the product of each slice
   * into a temporary matrix of m x n, on a grid of (ceil(n / 64), ceil(m / 64), ceil(k /
   * sliceDepth)) blocks of (16, 16) threads, and {@code kiln_matmul_sum_slices} adds those up in
   * slice order into C. The result therefore does not vary from run to run. Without accumulation
   * the old C is never read. Both y and z are capped at 65535, CUDA's limit for those grid
   * dimensions: past it, the blocks of a grid row loop over several row tiles, and the blocks of a
   * grid layer over several slices.
   *
   * @throws IllegalArgumentException if a size is negative, {@code sliceDepth} is below 1, or a
   *     buffer is too small
   */
  public void gemmInSlices(
      int sliceDepth,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      boolean accumulate) {
    requireMatrices(m, n, k, a, b, c);
    sumInSlices(sliceDepth, transA, transB, m, n, k, 1, a, 0, b, 0, c, accumulate);
  }

  /**
   * Computes C = the sum over i of op(A_i) op(B_i), or adds it to C, with {@code
   * kiln_matmul_tiled_slices} over the batches * k steps in slices of {@code sliceDepth} and {@code
   * kiln_matmul_sum_slices} over the slices: {@link #gemmInSlices} with one product, and {@link
   * DeviceBatchReduce} with several. The caller checks the sizes and buffers. With one slice and no
   * accumulation, the slice's sum is C itself, so the sliced kernel writes C and no sum follows. An
   * empty sum goes to the tiled kernel, which writes zeros, or leaves C unchanged when
   * accumulating.
   */
  void sumInSlices(
      int sliceDepth,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      long strideA,
      DeviceBuffer b,
      long strideB,
      DeviceBuffer c,
      boolean accumulate) {
    if (sliceDepth < 1) {
      throw new IllegalArgumentException("slice depth must be at least 1, got " + sliceDepth);
    }
    if (m == 0 || n == 0) {
      return;
    }
    if (k == 0 || batches == 0) {
      gemm(Kernel.TILED, transA, transB, m, n, 0, a, b, c, accumulate);
      return;
    }
    long slicesLong = ((long) batches * k + sliceDepth - 1) / sliceDepth;
    int slices = LaunchShapes.intSize("the number of slices", slicesLong);
    long elements = (long) m * n;
    boolean direct = slices == 1 && !accumulate;
    DeviceBuffer partial = direct ? c : runtime.allocateFloats(slices * elements);
    try {
      int tile = Kernel.TILED.tile;
      runtime.launch(
          "kiln_matmul_tiled_slices",
          new Dim3(Dim3.blocksFor(n, tile), gridRows(m, tile), gridLayers(slices)),
          Dim3.of(BLOCK_SIDE, BLOCK_SIDE),
          0,
          a,
          b,
          partial,
          m,
          n,
          k,
          flag(transA),
          flag(transB),
          sliceDepth,
          batches,
          strideA,
          strideB);
      if (!direct) {
        sumPartials(partial, slices, c, m, n, accumulate);
      }
    } finally {
      if (!direct) {
        runtime.free(partial);
      }
    }
  }

  /**
   * Writes to C, or adds to it with {@code accumulate}, the sum of {@code count} partial m x n
   * matrices that lie one after another in {@code partial}, added in their order by one launch of
   * {@code kiln_matmul_sum_slices}.
   */
  void sumPartials(
      DeviceBuffer partial, int count, DeviceBuffer c, int m, int n, boolean accumulate) {
    long elements = (long) m * n;
    Dim3 block = LaunchShapes.blockFor(elements);
    runtime.launch(
        "kiln_matmul_sum_slices",
        gridFor(elements, block),
        block,
        0,
        partial,
        c,
        m,
        n,
        count,
        flag(accumulate));
  }

  /**
   * Computes the same product with the chosen kernel.
   *
   * <p>The kernel runs on a grid of (ceil(n / T), ceil(m / T)) blocks of (16, 16) threads, where T
   * is its {@link Kernel#tile() tile}: 128, 64, or 16 for {@link Kernel#NAIVE}, whose threads each
   * compute one element of C. The grid's y extent is capped at {@link LaunchShapes#MAX_GRID_Y},
   * CUDA's limit, and beyond it each block row loops over several row tiles: from m = 65535 * T +
   * 1, that is 8,388,481 rows for {@link Kernel#TILED_128}, 4,194,241 for {@link Kernel#TILED} and
   * 1,048,561 for the naive kernel. With k = 0 every kernel writes zeros (or leaves C unchanged
   * when accumulating), as the CPU does.
   *
   * @throws IllegalArgumentException if a size is negative or a buffer is too small
   */
  public void gemm(
      Kernel kernel,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      boolean accumulate) {
    requireMatrices(m, n, k, a, b, c);
    launch(kernel, transA, transB, m, n, k, 1, a, 0, b, 0, c, 0, accumulate);
  }

  /**
   * Computes {@code batches} products C_i = op(A_i) op(B_i), or adds them to the C_i with {@code
   * accumulate}, where each buffer contains its packed matrices one after another, as a tensor of
   * shape [batches, rows, columns] does. This is the strided product below with strides of m * k, k
   * * n and m * n.
   *
   * @throws IllegalArgumentException if a size is negative or a buffer is too small
   */
  public void batchedGemm(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      boolean accumulate) {
    batchedGemm(
        transA,
        transB,
        m,
        n,
        k,
        batches,
        a,
        (long) m * k,
        b,
        (long) k * n,
        c,
        (long) m * n,
        accumulate);
  }

  /**
   * Computes {@code batches} products C_i = op(A_i) op(B_i), or adds them to the C_i with {@code
   * accumulate}, where matrix i of A starts {@code i * strideA} floats into {@code a}, and likewise
   * for B and C. A stride of 0 makes every product read the same matrix, as a convolution reads its
   * weight. The C matrices must not overlap one another, so {@code strideC} is at least m * n when
   * there are two or more.
   *
   * <p>With cuBLAS, one {@code cublasSgemmStridedBatched} call computes them all, and a single
   * product goes to the plain product of {@link #gemm(boolean, boolean, int, int, int,
   * DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}, which cuBLAS serves with {@code
   * cublasSgemm}. Without cuBLAS, a single product is also the default product, and two or more are
   * one launch of the kernel that {@link MatmulHeuristics#defaultKernel(int, int, int, int)}
   * chooses, with the products along the grid's z axis. Unlike a single product, a batch is never
   * cut into slices of k.
   *
   * @throws IllegalArgumentException if a size, the batch count or a stride is negative, {@code
   *     strideC} would overlap the C matrices, or a buffer is too small
   */
  public void batchedGemm(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      long strideA,
      DeviceBuffer b,
      long strideB,
      DeviceBuffer c,
      long strideC,
      boolean accumulate) {
    requireBatch(m, n, k, batches, a, strideA, b, strideB);
    requireOutputs(m, n, batches, c, strideC);
    if (m == 0 || n == 0 || batches == 0) {
      return;
    }
    if (batches == 1) {
      gemm(transA, transB, m, n, k, a, b, c, accumulate);
      return;
    }
    if (blas != null) {
      blas.sgemmRowMajorStridedBatched(
          transA,
          transB,
          m,
          n,
          k,
          1f,
          a.address(),
          strideA,
          b.address(),
          strideB,
          accumulate ? 1f : 0f,
          c.address(),
          strideC,
          batches);
      DeviceRuntime.keepReachable(a, b, c);
      return;
    }
    Kernel kernel = MatmulHeuristics.defaultKernel(m, n, batches, runtime.multiprocessors());
    launch(
        kernel, transA, transB, m, n, k, batches, a, strideA, b, strideB, c, strideC, accumulate);
  }

  /**
   * Computes the same batch of products as {@link #batchedGemm(boolean, boolean, int, int, int,
   * int, DeviceBuffer, long, DeviceBuffer, long, DeviceBuffer, long, boolean)} with the chosen
   * kernel, in one launch whatever the batch count, and never with cuBLAS. Its grid is that of
   * {@link #gemm(Kernel, boolean, boolean, int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer,
   * boolean)} with min(batches, 65535) layers along z, whose blocks loop over the products past
   * CUDA's limit of 65535.
   *
   * @throws IllegalArgumentException as the default batched product does
   */
  public void batchedGemm(
      Kernel kernel,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      long strideA,
      DeviceBuffer b,
      long strideB,
      DeviceBuffer c,
      long strideC,
      boolean accumulate) {
    requireBatch(m, n, k, batches, a, strideA, b, strideB);
    requireOutputs(m, n, batches, c, strideC);
    launch(
        kernel, transA, transB, m, n, k, batches, a, strideA, b, strideB, c, strideC, accumulate);
  }

  /** Launches {@code kernel} over a batch of products, which may be a batch of one. */
  private void launch(
      Kernel kernel,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      long strideA,
      DeviceBuffer b,
      long strideB,
      DeviceBuffer c,
      long strideC,
      boolean accumulate) {
    if (m == 0 || n == 0 || batches == 0) {
      return;
    }
    runtime.launch(
        kernel.function,
        new Dim3(Dim3.blocksFor(n, kernel.tile), gridRows(m, kernel.tile), gridLayers(batches)),
        Dim3.of(BLOCK_SIDE, BLOCK_SIDE),
        0,
        a,
        b,
        c,
        m,
        n,
        k,
        flag(transA),
        flag(transB),
        flag(accumulate),
        batches,
        strideA,
        strideB,
        strideC);
  }

  /**
   * Returns the grid's y extent for m rows in tiles of {@code rowsPerBlock}: one block row per
   * tile, up to {@link LaunchShapes#MAX_GRID_Y}.
   */
  static int gridRows(int m, int rowsPerBlock) {
    return Math.min(LaunchShapes.MAX_GRID_Y, Dim3.blocksFor(m, rowsPerBlock));
  }

  /**
   * Returns the grid's z extent for {@code layers} products or slices: one layer each, up to {@link
   * LaunchShapes#MAX_GRID_Z}, past which the kernels loop.
   */
  static int gridLayers(long layers) {
    return (int) Math.min(LaunchShapes.MAX_GRID_Z, layers);
  }

  /** Checks that the sizes are not negative and that A, B and C have room for their matrices. */
  private static void requireMatrices(
      int m, int n, int k, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c) {
    requireBatch(m, n, k, 1, a, 0, b, 0);
    requireFloats("matrix C", c, (long) m * n);
  }

  /**
   * Checks the sizes, the batch count and the strides, and that A and B have room for {@code
   * batches} matrices each, matrix i starting i * stride floats in.
   */
  static void requireBatch(
      int m,
      int n,
      int k,
      int batches,
      DeviceBuffer a,
      long strideA,
      DeviceBuffer b,
      long strideB) {
    if (m < 0 || n < 0 || k < 0) {
      throw new IllegalArgumentException(
          "matrix sizes must be non-negative, got m=" + m + ", n=" + n + ", k=" + k);
    }
    if (k > MAX_DEPTH) {
      throw new IllegalArgumentException(
          "k = " + k + " is above the " + MAX_DEPTH + " that kiln's kernels accept: split the sum");
    }
    if (batches < 0) {
      throw new IllegalArgumentException("batch count must be non-negative, got " + batches);
    }
    if (strideA < 0 || strideB < 0) {
      throw new IllegalArgumentException(
          "strides must be non-negative, got strideA=" + strideA + ", strideB=" + strideB);
    }
    requireFloats("matrix A", a, batchFloats(batches, strideA, (long) m * k));
    requireFloats("matrix B", b, batchFloats(batches, strideB, (long) k * n));
  }

  /** Checks that {@code batches} C matrices fit in {@code c} without overlapping one another. */
  private static void requireOutputs(int m, int n, int batches, DeviceBuffer c, long strideC) {
    long size = (long) m * n;
    if (batches > 1 && strideC < size) {
      throw new IllegalArgumentException(
          String.format(
              "strideC = %d would overlap the %d x %d C matrices, which the products write: use a"
                  + " stride of at least %d",
              strideC, m, n, size));
    }
    requireFloats("matrix C", c, batchFloats(batches, strideC, size));
  }

  /**
   * Returns the floats that {@code batches} matrices of {@code size} floats reach, or {@link
   * Long#MAX_VALUE} where that count does not fit in a long, which no buffer has room for.
   */
  private static long batchFloats(int batches, long stride, long size) {
    if (batches == 0) {
      return 0;
    }
    try {
      return Math.addExact(Math.multiplyExact(batches - 1, stride), size);
    } catch (ArithmeticException overflow) {
      return Long.MAX_VALUE;
    }
  }
}
