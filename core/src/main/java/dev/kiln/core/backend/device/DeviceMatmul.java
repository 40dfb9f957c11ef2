package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.flag;
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
 * <p>Two kernels compute the same product. {@link Kernel#TILED} stages 64 x 16 and 16 x 64 panels
 * in shared memory and keeps a 4 x 4 block of C per thread in registers. It is the kernel to use.
 * {@link Kernel#NAIVE} reads straight from global memory, one thread per element of C: slow, but
 * simple enough to check by eye, so it serves as a second opinion in tests.
 *
 * <p>On a GPU where cuBLAS loads, a launcher built with a {@link VendorBlas} sends the products of
 * {@link #gemm(boolean, boolean, int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}
 * to {@code cublasSgemm} instead, and those of {@link #batchedGemm} to {@code
 * cublasSgemmStridedBatched}, on the same stream. The overload that names a {@link Kernel} always
 * runs kiln's own kernel, so benchmarks and tests can compare the two.
 */
public final class DeviceMatmul {

  /** The kernel that computes a product. */
  public enum Kernel {
    /** {@code kiln_matmul_naive}: one thread per element of C, no shared memory. */
    NAIVE,
    /** {@code kiln_matmul_tiled}: 64 x 64 tiles of C through shared memory. */
    TILED
  }

  /** Edge of the square tile of C that one block of {@code kiln_matmul_tiled} computes. */
  static final int TILE = 64;

  /** Threads along each side of a {@code kiln_matmul_tiled} block (16 x 16 = 256). */
  static final int TILE_THREADS = 16;

  /** Side of the square block of {@code kiln_matmul_naive}: 16 x 16 = 256 threads. */
  static final int NAIVE_BLOCK = 16;

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
   * launcher has it, else with the tiled kernel. cuBLAS gets beta = 1 to accumulate and beta = 0 to
   * overwrite; with beta = 0 it does not read C, as the tiled kernel does not.
   *
   * <p>Launches {@code kiln_matmul_tiled} once, with a (16, 16) block per 64 x 64 tile of C, and
   * fewer block rows than row tiles where CUDA's grid limit requires it, so that one block then
   * computes several tiles. Every value a block stages in shared memory is reused 64 times, which
   * is what makes the product compute bound instead of memory bound. Does nothing for an empty C.
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
      gemm(Kernel.TILED, transA, transB, m, n, k, a, b, c, accumulate);
      return;
    }
    requireMatrices(m, n, k, a, b, c);
    if (m == 0 || n == 0) {
      return;
    }
    blas.sgemmRowMajor(
        transA, transB, m, n, k, 1f, a.address(), b.address(), accumulate ? 1f : 0f, c.address());
  }

  /**
   * Computes the same product with the chosen kernel.
   *
   * <p>{@link Kernel#TILED} launches {@code kiln_matmul_tiled} on a grid of (ceil(n / 64), ceil(m /
   * 64)) blocks of (16, 16) threads. {@link Kernel#NAIVE} launches {@code kiln_matmul_naive} on
   * (ceil(n / 16), ceil(m / 16)) blocks of (16, 16), one thread per element of C. The grid's y
   * extent is capped at {@link LaunchShapes#MAX_GRID_Y}, CUDA's limit, and beyond it each block row
   * loops over several row tiles: from m = 4,194,241 for the tiled kernel and m = 1,048,561 for the
   * naive one. With k = 0 both write zeros (or leave C unchanged when accumulating), as the CPU
   * does.
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
    Object[] args = {a, b, c, m, n, k, flag(transA), flag(transB), flag(accumulate)};
    switch (kernel) {
      case TILED ->
          runtime.launch(
              "kiln_matmul_tiled",
              Dim3.of(Dim3.blocksFor(n, TILE), gridRows(m, TILE)),
              Dim3.of(TILE_THREADS, TILE_THREADS),
              0,
              args);
      case NAIVE ->
          runtime.launch(
              "kiln_matmul_naive",
              Dim3.of(Dim3.blocksFor(n, NAIVE_BLOCK), gridRows(m, NAIVE_BLOCK)),
              Dim3.of(NAIVE_BLOCK, NAIVE_BLOCK),
              0,
              args);
    }
  }

  /**
   * Computes {@code batches} products C_i = op(A_i) op(B_i), or adds them to the C_i with {@code
   * accumulate}, where each buffer contains its packed matrices one after another, as a tensor of
   * shape [batches, rows, columns] does. With cuBLAS, one strided batched call computes them all,
   * and a single matrix goes to the plain product of {@link #gemm(boolean, boolean, int, int, int,
   * DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}. Without cuBLAS, the tiled kernel is
   * launched once per matrix.
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
      return;
    }
    for (int i = 0; i < batches; i++) {
      gemm(
          Kernel.TILED,
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
    requireFloats("matrix A", a, (long) batches * m * k);
    requireFloats("matrix B", b, (long) batches * k * n);
    requireFloats("matrix C", c, (long) batches * m * n);
  }
}
