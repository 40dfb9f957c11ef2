package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Tests the row-major to column-major mapping of {@link VendorBlas#sgemmRowMajor}. */
class VendorBlasTest {

  /** Records the arguments of the column-major call. */
  private static final class Recorder implements VendorBlas {
    List<Object> call;

    @Override
    public String description() {
      return "recorder";
    }

    @Override
    public void sgemm(
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
        int ldc) {
      call = List.of(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    @Override
    public void sgemmStridedBatched(
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
        int batchCount) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void close() {}
  }

  @Test
  void plainProductSwapsOperands() {
    // Row-major C[2x3] = A[2x4] B[4x3] is column-major C^T[3x2] = B^T[3x4] A^T[4x2].
    Recorder blas = new Recorder();

    blas.sgemmRowMajor(false, false, 2, 3, 4, 1f, 100L, 200L, 0f, 300L);

    assertEquals(List.of(false, false, 3, 2, 4, 1f, 200L, 3, 100L, 4, 0f, 300L, 3), blas.call);
  }

  @Test
  void transposedOperandsKeepTheirStoredRowLength() {
    // op(A) = A^T with A stored [k x m] = [4 x 2]; op(B) = B^T with B stored [n x k] = [3 x 4].
    Recorder blas = new Recorder();

    blas.sgemmRowMajor(true, true, 2, 3, 4, 2f, 100L, 200L, 1f, 300L);

    assertEquals(List.of(true, true, 3, 2, 4, 2f, 200L, 4, 100L, 2, 1f, 300L, 3), blas.call);
  }

  @Test
  void zeroDepthKeepsLeadingDimensionsPositive() {
    // Row-major C[2x3] = A[2x0] B[0x3]: both stored rows have length 0, and cuBLAS rejects a
    // leading dimension below 1 even for an empty matrix.
    Recorder blas = new Recorder();

    blas.sgemmRowMajor(false, false, 2, 3, 0, 1f, 100L, 200L, 0f, 300L);

    assertEquals(List.of(false, false, 3, 2, 0, 1f, 200L, 3, 100L, 1, 0f, 300L, 3), blas.call);
  }

  @Test
  void rowMajorMappingComputesTheRightProduct() {
    // Runs the mapped column-major call on the CPU and compares with a row-major product.
    float[] a = {1, 2, 3, 4, 5, 6}; // 2x3 row-major
    float[] b = {7, 8, 9, 10, 11, 12}; // 3x2 row-major
    float[] expected = {58, 64, 139, 154};
    Recorder blas = new Recorder();

    blas.sgemmRowMajor(false, false, 2, 2, 3, 1f, 1L, 2L, 0f, 3L);
    int m = (int) blas.call.get(2);
    int n = (int) blas.call.get(3);
    int k = (int) blas.call.get(4);
    int lda = (int) blas.call.get(7);
    int ldb = (int) blas.call.get(9);
    int ldc = (int) blas.call.get(12);
    float[] first = (long) blas.call.get(6) == 2L ? b : a;
    float[] second = (long) blas.call.get(8) == 1L ? a : b;
    float[] c = new float[4];
    for (int j = 0; j < n; j++) {
      for (int i = 0; i < m; i++) {
        float sum = 0;
        for (int p = 0; p < k; p++) {
          sum += first[i + p * lda] * second[p + j * ldb];
        }
        c[i + j * ldc] = sum;
      }
    }

    for (int i = 0; i < 4; i++) {
      assertEquals(expected[i], c[i], 0f, "element " + i);
    }
  }
}
