package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;
import java.util.Arrays;

/**
 * General matrix product on row-major float32 or float64 storage: C = op(A) op(B), or C += op(A)
 * op(B) when accumulating.
 *
 * <p>Products run in blocked i-k-j loops on the raw arrays, whose inner loop over a row of B and C
 * the JIT vectorizes, in EJML, or for float32 in {@link VectorGemm}. The plain loops are the
 * reference that tests compare the other paths against. {@link #VECTOR_MIN_WORK} and {@link
 * #EJML_MIN_WORK} record the measurements behind the choice.
 */
public final class Gemm {

  /**
   * Product size m * n * k from which EJML may be used. Below it both paths take a few
   * microseconds, and the loop avoids copying operands that sit at an offset.
   *
   * <p>Measured with a throwaway timing loop (best of 3 after warm-up, operands at offset 0) on a
   * 2-core x86-64 container with JDK 25. Milliseconds per product, loop / EJML:
   *
   * <pre>
   *   m x n x k      transposes  float32        float64
   *   64x64x64       none        0.094 / 0.096  0.149 / 0.090
   *   256x256x256    none        5.3 / 5.1      8.8 / 5.1
   *   576x2304x64    none        27.8 / 25.3    45.8 / 28.5
   *   576x2304x64    A           31.3 / 38.7    55.4 / 28.4
   *   576x2304x64    B           33.6 / 40.3    35.4 / 40.7
   *   64x576x2304    B           35.8 / 68.2    37.7 / 70.2
   * </pre>
   *
   * <p>So EJML runs products without a transposed B from this size on, except float32 with a
   * transposed A, where the loop is faster. EJML computes a transposed B as row-by-row dot
   * products, which is slower than packing B and running the loop.
   */
  static final long EJML_MIN_WORK = 32L * 32 * 32;

  /**
   * Product size m * n * k from which float32 products run in {@link VectorGemm}; smaller float32
   * products and all float64 products keep the rule of {@link #EJML_MIN_WORK}.
   *
   * <p>Measured with a throwaway timing loop (median of 7 after warm-up, loop / EJML / vector
   * interleaved, one thread) on a 2-core AMD EPYC with AVX-512 and JDK 25, shared with other
   * builds. GFLOP/s. The first twelve rows are the per-image products of the first four of the
   * default preset's five 3x3 convolutions: 16, 32, 64 and 128 output channels at 96x96, 48x48,
   * 24x24 and 12x12 outputs. Each conv has three rows, forward, input gradient and weight gradient.
   * The thirteenth is the forward product of a 4608 to 256 linear layer on batch 32, and the last
   * three are square:
   *
   * <pre>
   *   m x n x k        transposes  loop  EJML  vector
   *   16x9216x9        none         4.9   6.3    30.1
   *   9x9216x16        A            5.2   6.6    29.7
   *   16x9x9216        B            2.0   2.4     8.2
   *   32x2304x144      none         5.0   6.5    64.4
   *   144x2304x32      A            4.2   5.3    73.8
   *   32x144x2304      B            4.3   2.4    40.4
   *   64x576x288       none         5.2   6.8    70.7
   *   288x576x64       A            5.2   6.8    90.6
   *   64x288x576       B            4.9   2.7    59.4
   *   128x144x576      none         2.3   2.7    28.5
   *   576x144x128      A            3.8   5.4    78.4
   *   128x576x144      B            4.6   3.3    73.9
   *   32x256x4608      B            4.0   2.5    48.0
   *   512x512x512      none         5.1   6.2    57.3
   *   16x16x16         none         2.3   3.1     7.5
   *   8x8x8            none         1.9   2.4     1.8
   * </pre>
   *
   * <p>So the vector kernel wins from 16x16x16 on, and at the convolution shapes it runs 3.4 to 16
   * times as fast as the faster of the loop and EJML.
   *
   * <p>NOTE: the rows with a transposed B and m <= {@link FewRowsGemm#MAX_ROWS} (16x9x9216,
   * 32x144x2304, 32x256x4608) were measured before {@link FewRowsGemm} existed. {@link VectorGemm}
   * now sends those products there, so their vector column is stale. The table on {@link
   * FewRowsGemm#MAX_ROWS} has newer numbers.
   */
  static final long VECTOR_MIN_WORK = 16L * 16 * 16;

  /**
   * Columns of B and C per block. With {@link #DEPTH_BLOCK} it sizes one block of B at 128 x 256
   * values, 128 KiB of float32 or 256 KiB of float64, meant to stay in the L2 cache while every row
   * of A passes over it.
   */
  private static final int COLUMN_BLOCK = 256;

  /** Depth steps (rows of B, columns of A) per block, which {@link #COLUMN_BLOCK} explains. */
  private static final int DEPTH_BLOCK = 128;

  /** Implementation choice for one product. Tests force each one. */
  enum Path {
    AUTO,
    LOOP,
    EJML,
    /** {@link VectorGemm}; float32 only, and only when {@link VectorSupport#available()}. */
    VECTOR
  }

  private Gemm() {}

  /**
   * Computes C = op(A) op(B), or adds op(A) op(B) to C when {@code accumulate} is true.
   *
   * <p>op(A) is m x k. A is stored row-major from {@code aOffset} as m x k, or as k x m when {@code
   * transA} is set. op(B) is k x n, stored as k x n, or as n x k when {@code transB} is set. C is m
   * x n, row-major from {@code cOffset}; it must not overlap A or B. All three must have the same
   * dtype. When {@code accumulate} is false the previous contents of C are ignored, so NaN in C
   * does not leak into the result.
   *
   * @throws IllegalArgumentException if the dtypes differ, a size is negative, or a matrix does not
   *     fit its storage at the given offset
   */
  public static void gemm(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      Storage a,
      int aOffset,
      Storage b,
      int bOffset,
      Storage c,
      int cOffset,
      boolean accumulate) {
    gemm(Path.AUTO, transA, transB, m, n, k, a, aOffset, b, bOffset, c, cOffset, accumulate);
  }

  static void gemm(
      Path path,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      Storage a,
      int aOffset,
      Storage b,
      int bOffset,
      Storage c,
      int cOffset,
      boolean accumulate) {
    if (a.dtype() != b.dtype() || a.dtype() != c.dtype()) {
      throw new IllegalArgumentException(
          "gemm needs one dtype, got A "
              + a.dtype()
              + ", B "
              + b.dtype()
              + ", C "
              + c.dtype()
              + ": convert the operands first");
    }
    if (m < 0 || n < 0 || k < 0) {
      throw new IllegalArgumentException(
          "gemm sizes must be non-negative, got m=" + m + ", n=" + n + ", k=" + k);
    }
    requireFits("A", a, aOffset, (long) m * k);
    requireFits("B", b, bOffset, (long) k * n);
    requireFits("C", c, cOffset, (long) m * n);

    if (m == 0 || n == 0) {
      return;
    }
    if (k == 0) {
      if (!accumulate) {
        fillZero(c, cOffset, m * n);
      }
      return;
    }

    if (path == Path.VECTOR || (path == Path.AUTO && prefersVector(a, m, n, k))) {
      if (!(a instanceof Storage.F32)) {
        throw new IllegalArgumentException(
            "the vector gemm path is float32 only, got " + a.dtype());
      }
      if (!VectorSupport.available()) {
        throw new IllegalStateException(
            "the vector gemm path was forced, but the "
                + VectorSupport.MODULE
                + " module is missing: start the JVM with --add-modules "
                + VectorSupport.MODULE);
      }
      VectorGemm.multiply(
          transA,
          transB,
          m,
          n,
          k,
          a.floats(),
          aOffset,
          b.floats(),
          bOffset,
          c.floats(),
          cOffset,
          accumulate);
      return;
    }
    boolean useEjml =
        path == Path.EJML || (path == Path.AUTO && prefersEjml(a, transA, transB, m, n, k));
    if (useEjml) {
      EjmlGemm.multiply(transA, transB, m, n, k, a, aOffset, b, bOffset, c, cOffset, accumulate);
    } else if (a instanceof Storage.F32) {
      multiplyLoop(
          transA,
          transB,
          m,
          n,
          k,
          a.floats(),
          aOffset,
          b.floats(),
          bOffset,
          c.floats(),
          cOffset,
          accumulate);
    } else {
      multiplyLoop(
          transA,
          transB,
          m,
          n,
          k,
          a.doubles(),
          aOffset,
          b.doubles(),
          bOffset,
          c.doubles(),
          cOffset,
          accumulate);
    }
  }

  /**
   * Applies the rule measured in {@link #VECTOR_MIN_WORK}, when the JVM has the Vector API (see
   * {@link VectorSupport}).
   */
  private static boolean prefersVector(Storage a, int m, int n, int k) {
    return a instanceof Storage.F32
        && (long) m * n * k >= VECTOR_MIN_WORK
        && VectorSupport.available();
  }

  /** Applies the rule measured in {@link #EJML_MIN_WORK}. */
  private static boolean prefersEjml(
      Storage a, boolean transA, boolean transB, int m, int n, int k) {
    if (transB || (long) m * n * k < EJML_MIN_WORK) {
      return false;
    }
    return a instanceof Storage.F64 || !transA;
  }

  private static void multiplyLoop(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      float[] a,
      int aOffset,
      float[] b,
      int bOffset,
      float[] c,
      int cOffset,
      boolean accumulate) {
    if (!accumulate) {
      Arrays.fill(c, cOffset, cOffset + m * n, 0f);
    }

    // The inner loop walks a row of B, so a transposed B is packed into k x n first.
    float[] rowsOfB = b;
    int rowsOfBOffset = bOffset;
    if (transB) {
      rowsOfB = new float[k * n];
      rowsOfBOffset = 0;
      for (int j = 0; j < n; j++) {
        for (int p = 0; p < k; p++) {
          rowsOfB[p * n + j] = b[bOffset + j * k + p];
        }
      }
    }

    // A(i, p) is a[aOffset + i * aRowStep + p * aDepthStep].
    int aRowStep = transA ? 1 : k;
    int aDepthStep = transA ? m : 1;
    for (int j0 = 0; j0 < n; j0 += COLUMN_BLOCK) {
      int j1 = Math.min(n, j0 + COLUMN_BLOCK);
      for (int p0 = 0; p0 < k; p0 += DEPTH_BLOCK) {
        int p1 = Math.min(k, p0 + DEPTH_BLOCK);
        for (int i = 0; i < m; i++) {
          int cRow = cOffset + i * n;
          for (int p = p0; p < p1; p++) {
            float aip = a[aOffset + i * aRowStep + p * aDepthStep];
            int bRow = rowsOfBOffset + p * n;
            for (int j = j0; j < j1; j++) {
              c[cRow + j] += aip * rowsOfB[bRow + j];
            }
          }
        }
      }
    }
  }

  /** Float64 copy of the float32 loop above. */
  private static void multiplyLoop(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      double[] a,
      int aOffset,
      double[] b,
      int bOffset,
      double[] c,
      int cOffset,
      boolean accumulate) {
    if (!accumulate) {
      Arrays.fill(c, cOffset, cOffset + m * n, 0.0);
    }

    double[] rowsOfB = b;
    int rowsOfBOffset = bOffset;
    if (transB) {
      rowsOfB = new double[k * n];
      rowsOfBOffset = 0;
      for (int j = 0; j < n; j++) {
        for (int p = 0; p < k; p++) {
          rowsOfB[p * n + j] = b[bOffset + j * k + p];
        }
      }
    }

    int aRowStep = transA ? 1 : k;
    int aDepthStep = transA ? m : 1;
    for (int j0 = 0; j0 < n; j0 += COLUMN_BLOCK) {
      int j1 = Math.min(n, j0 + COLUMN_BLOCK);
      for (int p0 = 0; p0 < k; p0 += DEPTH_BLOCK) {
        int p1 = Math.min(k, p0 + DEPTH_BLOCK);
        for (int i = 0; i < m; i++) {
          int cRow = cOffset + i * n;
          for (int p = p0; p < p1; p++) {
            double aip = a[aOffset + i * aRowStep + p * aDepthStep];
            int bRow = rowsOfBOffset + p * n;
            for (int j = j0; j < j1; j++) {
              c[cRow + j] += aip * rowsOfB[bRow + j];
            }
          }
        }
      }
    }
  }

  /** Sets {@code length} elements of {@code storage} from {@code offset} to zero. */
  static void fillZero(Storage storage, int offset, int length) {
    if (storage instanceof Storage.F32) {
      Arrays.fill(storage.floats(), offset, offset + length, 0f);
    } else {
      Arrays.fill(storage.doubles(), offset, offset + length, 0.0);
    }
  }

  private static void requireFits(String name, Storage storage, int offset, long length) {
    if (offset < 0 || offset + length > storage.size()) {
      throw new IllegalArgumentException(
          "gemm operand "
              + name
              + " needs "
              + length
              + " elements from offset "
              + offset
              + " but its storage has "
              + storage.size()
              + ": check the sizes and the offset");
    }
  }
}
