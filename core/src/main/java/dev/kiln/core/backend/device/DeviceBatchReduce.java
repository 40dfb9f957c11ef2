package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;

/**
 * Launches batch-reduce GEMMs: the sum of a batch of products, C = op(A_0) op(B_0) + ... +
 * op(A_{batches - 1}) op(B_{batches - 1}), or C += that sum, on row-major float32 matrices with the
 * sizes and transposes of {@link DeviceMatmul}. A convolution's weight gradient over a group of
 * images is such a sum: gradW = the sum over images b of gradY[b] column[b]^T, whose sum over
 * output positions goes on across the images.
 *
 * <p>Matrix i of A starts {@code i * strideA} floats into its buffer, and likewise for B. A stride
 * of 0 makes every product read the same matrix.
 */
public final class DeviceBatchReduce {

  /**
   * Maximum scratch floats that the cuBLAS branch takes for the products that it adds up: 64 Mi,
   * which is 256 MiB, the bound that {@link DeviceConv} sets on its column matrices.
   */
  static final long CUBLAS_SCRATCH_LIMIT_FLOATS = 64L << 20;

  private final DeviceRuntime runtime;
  private final DeviceMatmul matmul;
  private final long cublasScratchLimitFloats;

  /**
   * Creates the launcher for one device, which takes cuBLAS where {@code matmul} does, and its
   * single products and sliced sums from {@code matmul}.
   */
  public DeviceBatchReduce(DeviceRuntime runtime, DeviceMatmul matmul) {
    this(runtime, matmul, CUBLAS_SCRATCH_LIMIT_FLOATS);
  }

  /** As the public constructor, with another scratch limit for the cuBLAS branch, for tests. */
  DeviceBatchReduce(DeviceRuntime runtime, DeviceMatmul matmul, long cublasScratchLimitFloats) {
    this.runtime = runtime;
    this.matmul = matmul;
    this.cublasScratchLimitFloats = cublasScratchLimitFloats;
  }

  /**
   * Computes C = the sum over i of op(A_i) op(B_i), or adds it to C with {@code accumulate}. A
   * single product is the default product of {@link DeviceMatmul#gemm(boolean, boolean, int, int,
   * int, DeviceBuffer, DeviceBuffer, DeviceBuffer, boolean)}, and an empty sum (no products, or k =
   * 0) writes zeros, or leaves C unchanged when accumulating. For two or more:
   *
   * <ul>
   *   <li>Without cuBLAS, {@code kiln_matmul_tiled_slices} takes the batches * k steps as one sum
   *       in slices of the depth that {@link MatmulHeuristics#batchSliceDepthFor} gives, and {@code
   *       kiln_matmul_sum_slices} adds the slices' partial C up: two launches, with slices * m * n
   *       floats of scratch. That is less than two waves of 64 x 64 tiles (17 MB on an H200), or
   *       one C where C alone has a wave of tiles. Where there is one slice and C is only written,
   *       the sliced kernel writes C itself: one launch, no scratch.
   *   <li>With cuBLAS, one {@code cublasSgemmStridedBatched} call writes every product into a
   *       scratch matrix of its own, and {@code kiln_matmul_sum_slices} adds them up in batch
   *       order: one library call and one launch, with batches * m * n floats of scratch. Where
   *       that would pass {@link #CUBLAS_SCRATCH_LIMIT_FLOATS}, the batch is cut into chunks that
   *       stay below it (or chunks of one product, where a single one is larger), each a call and a
   *       launch.
   * </ul>
   *
   * <p>Either way the sum is added up in a fixed order, so it does not vary from run to run. That
   * order differs from accumulating the products into C one after another, so the last bits of the
   * result may differ from such a loop.
   *
   * @throws IllegalArgumentException if a size, the batch count or a stride is negative, or a
   *     buffer is too small
   */
  public void gemm(
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
    DeviceMatmul.requireBatch(m, n, k, batches, a, strideA, b, strideB);
    requireFloats("matrix C", c, (long) m * n);
    if (m == 0 || n == 0) {
      return;
    }
    if (batches <= 1 || k == 0) {
      // One product, or an empty sum, which a product over k = 0 writes as zeros.
      matmul.gemm(transA, transB, m, n, batches == 0 ? 0 : k, a, b, c, accumulate);
      return;
    }
    VendorBlas blas = matmul.vendor();
    if (blas != null) {
      sumCublasProducts(
          blas, transA, transB, m, n, k, batches, a, strideA, b, strideB, c, accumulate);
    } else {
      int sliceDepth =
          MatmulHeuristics.batchSliceDepthFor(m, n, k, batches, runtime.multiprocessors());
      matmul.sumInSlices(
          sliceDepth, transA, transB, m, n, k, batches, a, strideA, b, strideB, c, accumulate);
    }
    DeviceRuntime.keepReachable(a, b, c);
  }

  /** The cuBLAS branch of {@link #gemm}, for two or more products of k >= 1 steps. */
  private void sumCublasProducts(
      VendorBlas blas,
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
    long elements = (long) m * n;
    int chunk = (int) Math.max(1, Math.min(batches, cublasScratchLimitFloats / elements));
    DeviceBuffer products = runtime.allocateFloats(chunk * elements);
    try {
      for (int first = 0; first < batches; first += chunk) {
        int count = Math.min(chunk, batches - first);
        blas.sgemmRowMajorStridedBatched(
            transA,
            transB,
            m,
            n,
            k,
            1f,
            address(a, first * strideA),
            strideA,
            address(b, first * strideB),
            strideB,
            0f,
            products.address(),
            elements,
            count);
        matmul.sumPartials(products, count, c, m, n, accumulate || first > 0);
      }
    } finally {
      runtime.free(products);
    }
  }

  /** Returns the device address {@code floats} floats into {@code buffer}. */
  private static long address(DeviceBuffer buffer, long floats) {
    return buffer.address() + floats * Float.BYTES;
  }
}
