package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.VendorContractSupport.nans;
import static dev.kiln.core.backend.device.VendorContractSupport.toDoubles;

import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.device.VendorContractSupport.Bindings;
import dev.kiln.core.backend.device.VendorContractSupport.Buffers;
import dev.kiln.core.backend.device.VendorContractSupport.ForEachBinding;
import dev.kiln.core.backend.device.VendorContractSupport.Opened;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;

/**
 * Checks the three products of {@link VendorBlas} against a float64 column-major reference, for
 * each binding of {@link VendorContractSupport}. Each output element sums at most 5 products, well
 * within the rounding that {@link DeviceTestSupport#SUMMED} allows.
 */
class VendorBlasGpuTest {
  private static final Bindings BINDINGS = new Bindings(VendorBlasGpuTest.class);

  private final Random random = new Random(DeviceTestSupport.SEED);

  @AfterAll
  static void closeBindings() {
    BINDINGS.close();
  }

  @ForEachBinding
  void sgemmColumnMajor(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorBlas blas = opened.blas();
    int m = 5;
    int n = 7;
    int k = 3;
    try (Buffers buffers = new Buffers(opened.memory())) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, -0.5f}) {
            // Stored column-major with leading dimensions above the row count, so that a binding
            // that ignores lda, ldb or ldc reads or writes the wrong elements.
            Matrix a = Matrix.random(random, transA ? k : m, transA ? m : k, 2);
            Matrix b = Matrix.random(random, transB ? n : k, transB ? k : n, 1);
            Matrix c = Matrix.random(random, m, n, 3);
            float[] start = beta == 0 ? c.withNaN() : c.values;
            long dc = buffers.of(start);

            blas.sgemm(
                transA,
                transB,
                m,
                n,
                k,
                1.5f,
                buffers.of(a.values),
                a.ld,
                buffers.of(b.values),
                b.ld,
                beta,
                dc,
                c.ld);

            double[] expected = Matrix.product(a, transA, b, transB, c, m, n, k, 1.5, beta);
            String label = "sgemm transA=" + transA + " transB=" + transB + " beta=" + beta;
            assertClose(binding, label, expected, buffers.read(dc, start.length), SUMMED);
          }
        }
      }
    }
  }

  @ForEachBinding
  void sgemmRowMajor(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorBlas blas = opened.blas();
    int m = 4;
    int n = 6;
    int k = 5;
    try (Buffers buffers = new Buffers(opened.memory())) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, 1f}) {
            float[] a = DeviceTestSupport.randomFloats(random, m * k);
            float[] b = DeviceTestSupport.randomFloats(random, k * n);
            float[] c = DeviceTestSupport.randomFloats(random, m * n);
            long dc = buffers.of(beta == 0 ? nans(m * n) : c);

            blas.sgemmRowMajor(
                transA, transB, m, n, k, 0.5f, buffers.of(a), buffers.of(b), beta, dc);

            // Row-major: op(A)[i][p] is a[i * k + p], or a[p * m + i] where A is stored as k x m.
            double[] expected = new double[m * n];
            for (int i = 0; i < m; i++) {
              for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                  double left = transA ? a[p * m + i] : a[i * k + p];
                  double right = transB ? b[j * k + p] : b[p * n + j];
                  sum += left * right;
                }
                expected[i * n + j] = 0.5 * sum + (beta == 0 ? 0 : beta * c[i * n + j]);
              }
            }
            String label = "row-major sgemm transA=" + transA + " transB=" + transB;
            assertClose(
                binding, label + " beta=" + beta, expected, buffers.read(dc, m * n), SUMMED);
          }
        }
      }
    }
  }

  @ForEachBinding
  void sgemmStridedBatched(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorBlas blas = opened.blas();
    int m = 3;
    int n = 5;
    int k = 4;
    int batch = 3;
    try (Buffers buffers = new Buffers(opened.memory())) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, 2f}) {
            Matrix a = Matrix.random(random, transA ? k : m, transA ? m : k, 1);
            Matrix b = Matrix.random(random, transB ? n : k, transB ? k : n, 2);
            Matrix c = Matrix.random(random, m, n, 1);
            // Each batch's matrices are followed by a gap of 3 to 5 elements. The gaps and the
            // rows below m in C hold values that the call must leave alone.
            int strideA = a.values.length + 3;
            int strideB = b.values.length + 4;
            int strideC = c.values.length + 5;
            float[] as = DeviceTestSupport.randomFloats(random, strideA * batch);
            float[] bs = DeviceTestSupport.randomFloats(random, strideB * batch);
            float[] cs = DeviceTestSupport.randomFloats(random, strideC * batch);
            for (int i = 0; i < batch; i++) {
              for (int e = 0; e < c.values.length; e++) {
                if (beta == 0 && e % c.ld < m) {
                  cs[i * strideC + e] = Float.NaN;
                }
              }
            }
            long dc = buffers.of(cs);

            blas.sgemmStridedBatched(
                transA,
                transB,
                m,
                n,
                k,
                -1.25f,
                buffers.of(as),
                a.ld,
                strideA,
                buffers.of(bs),
                b.ld,
                strideB,
                beta,
                dc,
                c.ld,
                strideC,
                batch);

            double[] expected = toDoubles(cs);
            for (int i = 0; i < batch; i++) {
              Matrix ai = Matrix.slice(as, i * strideA, a);
              Matrix bi = Matrix.slice(bs, i * strideB, b);
              Matrix ci = Matrix.slice(cs, i * strideC, c);
              double[] one = Matrix.product(ai, transA, bi, transB, ci, m, n, k, -1.25, beta);
              System.arraycopy(one, 0, expected, i * strideC, one.length);
            }
            String label = "strided batch transA=" + transA + " transB=" + transB + " beta=" + beta;
            assertClose(binding, label, expected, buffers.read(dc, cs.length), SUMMED);
          }
        }
      }
    }
  }

  // Reference.

  /**
   * A column-major matrix of {@code rows} x {@code columns} with leading dimension {@code ld}: the
   * element (i, j) is {@code values[i + j * ld]}.
   */
  private record Matrix(int rows, int columns, int ld, float[] values) {

    /** Returns a random matrix whose leading dimension exceeds its rows by {@code padding}. */
    static Matrix random(Random random, int rows, int columns, int padding) {
      int ld = rows + padding;
      return new Matrix(rows, columns, ld, DeviceTestSupport.randomFloats(random, ld * columns));
    }

    /** Returns the matrix of the same layout that starts at {@code offset} of {@code values}. */
    static Matrix slice(float[] values, int offset, Matrix layout) {
      float[] part = Arrays.copyOfRange(values, offset, offset + layout.values.length);
      return new Matrix(layout.rows, layout.columns, layout.ld, part);
    }

    double get(int i, int j) {
      return values[i + j * ld];
    }

    /** Returns a copy with NaN in every element of the matrix, and the padding rows unchanged. */
    float[] withNaN() {
      float[] copy = values.clone();
      for (int e = 0; e < copy.length; e++) {
        if (e % ld < rows) {
          copy[e] = Float.NaN;
        }
      }
      return copy;
    }

    /**
     * Returns C's storage after C = alpha op(A) op(B) + beta C in float64. The padding rows keep
     * their values, and with beta = 0 the old C is not read, so a NaN there cannot reach the
     * result.
     */
    static double[] product(
        Matrix a,
        boolean transA,
        Matrix b,
        boolean transB,
        Matrix c,
        int m,
        int n,
        int k,
        double alpha,
        double beta) {
      double[] out = toDoubles(c.values);
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
          double sum = 0;
          for (int p = 0; p < k; p++) {
            double left = transA ? a.get(p, i) : a.get(i, p);
            double right = transB ? b.get(j, p) : b.get(p, j);
            sum += left * right;
          }
          out[i + j * c.ld] = alpha * sum + (beta == 0 ? 0 : beta * c.get(i, j));
        }
      }
      return out;
    }
  }
}
