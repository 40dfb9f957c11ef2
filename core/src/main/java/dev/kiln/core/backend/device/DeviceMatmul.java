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
 * <p>On a GPU where cuBLAS loads, a launcher built with a {@link VendorBlas} sends the products of
 * {@link #gemm(boolean, boolean, int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}
 * to {@code cublasSgemm} instead, and those of {@link #batchedGemm} to {@code
 * cublasSgemmStridedBatched}, on the same stream. The overload that names a {@link Kernel} always
 * runs kiln's own kernel, so benchmarks and tests can compare the two.
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
   * the old C is never read.
   *
   * @throws IllegalArgumentException if a size is negative, {@code sliceDepth} is below 1, the
   *     slices are more than CUDA's grid allows along z (65535), or a buffer is too small
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
    if (sliceDepth < 1) {
      throw new IllegalArgumentException("slice depth must be at least 1, got " + sliceDepth);
    }
    int slices = Dim3.blocksFor(k, sliceDepth);
    if (slices > LaunchShapes.MAX_GRID_Y) {
      throw new IllegalArgumentException(
          String.format(
              "k = %d in slices of %d makes %d slices, more than the %d a grid allows: use"
                  + " deeper slices",
              k, sliceDepth, slices, LaunchShapes.MAX_GRID_Y));
    }
    if (m == 0 || n == 0) {
      return;
    }
    long elements = (long) m * n;
    DeviceBuffer partial = runtime.allocateFloats(slices * elements);
    try {
      int tile = Kernel.TILED.tile;
      runtime.launch(
          "kiln_matmul_tiled_slices",
          new Dim3(Dim3.blocksFor(n, tile), gridRows(m, tile), slices),
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
          sliceDepth);
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
          slices,
          flag(accumulate));
    } finally {
      runtime.free(partial);
    }
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
    if (m == 0 || n == 0) {
      return;
    }
    runtime.launch(
        kernel.function,
        Dim3.of(Dim3.blocksFor(n, kernel.tile), gridRows(m, kernel.tile)),
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
        flag(accumulate));
  }

  /**
   * Computes {@code batches} products C_i = op(A_i) op(B_i), or adds them to the C_i with {@code
   * accumulate}, where each buffer contains its packed matrices one after another, as a tensor of
   * shape [batches, rows, columns] does. With cuBLAS, one strided batched call computes them all,
   * and a single matrix goes to the plain product of {@link #gemm(boolean, boolean, int, int, int,
   * DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}. Without cuBLAS, each matrix is computed as
   * the default product computes one.
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
    if (batches < 0) {
      throw new IllegalArgumentException("batch count must be non-negative, got " + batches);
    }
    requireMatrices(m, n, k, batches, a, b, c);
    if (m == 0 || n == 0 || batches == 0) {
      return;
    }
    if (batches == 1) {
      // One matrix is a plain product, which cuBLAS serves with cublasSgemm.
      gemm(transA, transB, m, n, k, a, b, c, accumulate);
      return;
    }
    if (blas != null) {
      blas.sgemmRowMajorBatched(
          transA,
          transB,
          m,
          n,
          k,
          1f,
          a.address(),
          b.address(),
          accumulate ? 1f : 0f,
          c.address(),
          batches);
      DeviceRuntime.keepReachable(a, b, c);
      return;
    }
    for (int i = 0; i < batches; i++) {
      ownProduct(
          transA,
          transB,
          m,
          n,
          k,
          DeviceRuntime.slice(a, (long) i * m * k, (long) m * k),
          DeviceRuntime.slice(b, (long) i * k * n, (long) k * n),
          DeviceRuntime.slice(c, (long) i * m * n, (long) m * n),
          accumulate);
    }
    DeviceRuntime.keepReachable(a, b, c);
  }

  /**
   * Returns the grid's y extent for m rows in tiles of {@code rowsPerBlock}: one block row per
   * tile, up to {@link LaunchShapes#MAX_GRID_Y}.
   */
  static int gridRows(int m, int rowsPerBlock) {
    return Math.min(LaunchShapes.MAX_GRID_Y, Dim3.blocksFor(m, rowsPerBlock));
  }

  /** Checks that the sizes are not negative and that A, B and C have room for their matrices. */
  private static void requireMatrices(
      int m, int n, int k, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c) {
    requireMatrices(m, n, k, 1, a, b, c);
  }

  /** Checks the sizes and that A, B and C have room for {@code batches} matrices each. */
  private static void requireMatrices(
      int m, int n, int k, int batches, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c) {
    if (m < 0 || n < 0 || k < 0) {
      throw new IllegalArgumentException(
          "matrix sizes must be non-negative, got m=" + m + ", n=" + n + ", k=" + k);
    }
    if (k > MAX_DEPTH) {
      throw new IllegalArgumentException(
          "k = " + k + " is above the " + MAX_DEPTH + " that kiln's kernels accept: split the sum");
    }
    requireFloats("matrix A", a, (long) batches * m * k);
    requireFloats("matrix B", b, (long) batches * k * n);
    requireFloats("matrix C", c, (long) batches * m * n);
  }
}
