package dev.kiln.core.backend.cuda.libraries;

/**
 * The cuBLAS calls that kiln's layers make, on device pointers, whichever binding serves them.
 *
 * <p>cuBLAS follows Fortran's BLAS and stores matrices column-major: element (i, j) of an m-by-n
 * matrix with leading dimension {@code ld} is at {@code i + j * ld}. kiln stores row-major. A
 * row-major matrix read column-major is its transpose, so the row-major product C = A B is computed
 * as the column-major product C^T = B^T A^T by swapping the operands, which {@link #sgemmRowMajor}
 * does.
 *
 * <p>Pointers are raw device addresses, such as {@link
 * dev.kiln.core.backend.cuda.DeviceBuffer#address()}. Every call is enqueued on kiln's stream and
 * returns before the GPU has finished.
 */
public interface VendorBlas extends VendorBinding {

  /**
   * Computes C = alpha op(A) op(B) + beta C in column-major layout ({@code cublasSgemm_v2}).
   *
   * @param transposeA whether op(A) is A^T
   * @param transposeB whether op(B) is B^T
   * @param m rows of op(A) and C
   * @param n columns of op(B) and C
   * @param k columns of op(A), rows of op(B)
   */
  void sgemm(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long b,
      int ldb,
      float beta,
      long c,
      int ldc);

  /**
   * Computes {@code batchCount} independent products, each as in {@link #sgemm}, where matrix i of
   * A starts {@code i * strideA} elements after {@code a}, and likewise for B and C ({@code
   * cublasSgemmStridedBatched}).
   */
  void sgemmStridedBatched(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long strideA,
      long b,
      int ldb,
      long strideB,
      float beta,
      long c,
      int ldc,
      long strideC,
      int batchCount);

  /**
   * Computes the row-major product C[m x n] = alpha op(A) op(B) + beta C of packed row-major
   * matrices, where op(A) is m x k and op(B) is k x n.
   *
   * <p>Read column-major, the row-major C is C^T, so this calls {@link #sgemm} for C^T = op(B)^T
   * op(A)^T with B first. Each leading dimension is the row length of the stored row-major matrix,
   * or 1 where that length is 0.
   */
  default void sgemmRowMajor(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      long b,
      float beta,
      long c) {
    int lda = leadingDimension(transposeA ? m : k);
    int ldb = leadingDimension(transposeB ? k : n);
    sgemm(transposeB, transposeA, n, m, k, alpha, b, ldb, a, lda, beta, c, n);
  }

  /**
   * Computes {@code batchCount} row-major products as in {@link #sgemmRowMajor}, where matrix i of
   * A starts {@code i * strideA} elements after {@code a}, of B {@code i * strideB} after {@code
   * b}, and of C {@code i * strideC} after {@code c}. One {@link #sgemmStridedBatched} call
   * computes them all, with the operands swapped as in {@link #sgemmRowMajor}. A stride of 0 for A
   * or B makes every product read the same matrix, which cuBLAS accepts. The C matrices must not
   * overlap one another, because cuBLAS may compute the products in any order or at once.
   *
   * <p>NOTE: a stride of 0 has run against the host stand-in of the tests only, not on a GPU.
   */
  default void sgemmRowMajorStridedBatched(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      long strideA,
      long b,
      long strideB,
      float beta,
      long c,
      long strideC,
      int batchCount) {
    int lda = leadingDimension(transposeA ? m : k);
    int ldb = leadingDimension(transposeB ? k : n);
    sgemmStridedBatched(
        transposeB,
        transposeA,
        n,
        m,
        k,
        alpha,
        b,
        ldb,
        strideB,
        a,
        lda,
        strideA,
        beta,
        c,
        n,
        strideC,
        batchCount);
  }

  /**
   * Returns the leading dimension of a stored row-major matrix with {@code rowLength} columns.
   * cuBLAS rejects a leading dimension below 1 with CUBLAS_STATUS_INVALID_VALUE even when the
   * matrix is empty, as BLAS does, so a row length of 0 (k = 0, a product over no terms) becomes 1.
   * NOTE: k = 0 has run against the host stand-in of the tests only, not on a GPU.
   */
  private static int leadingDimension(int rowLength) {
    return Math.max(1, rowLength);
  }
}
