package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Compares {@link FewRowsGemm} with the plain loop of {@link Gemm}, which is the reference. */
class FewRowsGemmTest {

  private static final int A_OFFSET = 3;
  private static final int B_OFFSET = 5;
  private static final int C_OFFSET = 2;
  private static final int TAIL = 4;

  /** Float32 sums of up to 300 products, in a different order from the loop. */
  private static final double TOLERANCE = 1e-5;

  /**
   * Checks row counts up to the limit, so every size of the last row group, with an odd column
   * count (a last column without a partner) and a depth past the last whole vector.
   */
  @ParameterizedTest(name = "{0} rows")
  @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 32})
  void matchesLoopForEveryRowGroup(int m) {
    for (boolean accumulate : new boolean[] {false, true}) {
      assertMatchesLoop(m, 9, 4 * VectorGemm.LANES + 3, accumulate);
    }
  }

  /** A product of more than 2^20 multiply-adds, which is split over the threads. */
  @Test
  void matchesLoopWhenSplitOverThreads() {
    assertMatchesLoop(10, 1001, 300, false);
  }

  /**
   * Each column's sums run in the same order however the columns are split: the product equals, bit
   * for bit, the same product computed one column at a time, which runs on one thread.
   */
  @Test
  void splitDoesNotChangeTheBits() {
    int m = 10;
    int n = 1001;
    int k = 300;
    Storage a = randomStorage(DType.FLOAT32, m * k, 1);
    Storage b = randomStorage(DType.FLOAT32, n * k, 2);
    float[] whole = new float[m * n];
    FewRowsGemm.multiply(m, n, k, a.floats(), 0, b.floats(), 0, whole, 0, false);

    float[] byColumn = new float[m * n];
    float[] column = new float[m];
    for (int j = 0; j < n; j++) {
      FewRowsGemm.multiply(m, 1, k, a.floats(), 0, b.floats(), j * k, column, 0, false);
      for (int i = 0; i < m; i++) {
        byColumn[i * n + j] = column[i];
      }
    }

    assertEquals(
        2,
        CpuParallel.chunkCount(n),
        "the whole product must be split: set -Dkiln.threads=2 for the core tests");
    assertArrayEquals(byColumn, whole);
  }

  @Test
  void rejectsTooManyRows() {
    int m = FewRowsGemm.MAX_ROWS + 1;
    float[] a = new float[m * 64];
    float[] b = new float[64];
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> FewRowsGemm.multiply(m, 1, 64, a, 0, b, 0, new float[m], 0, false));
    assertEquals("few-rows gemm: A has 33 rows, more than the maximum of 32", e.getMessage());
  }

  private static void assertMatchesLoop(int m, int n, int k, boolean accumulate) {
    Storage a = randomStorage(DType.FLOAT32, A_OFFSET + m * k + TAIL, 1);
    Storage b = randomStorage(DType.FLOAT32, B_OFFSET + n * k + TAIL, 2);
    Storage expected = randomStorage(DType.FLOAT32, C_OFFSET + m * n + TAIL, 3);
    Storage actual = expected.copy();

    Gemm.gemm(
        Gemm.Path.LOOP,
        false,
        true,
        m,
        n,
        k,
        a,
        A_OFFSET,
        b,
        B_OFFSET,
        expected,
        C_OFFSET,
        accumulate);
    FewRowsGemm.multiply(
        m, n, k, a.floats(), A_OFFSET, b.floats(), B_OFFSET, actual.floats(), C_OFFSET, accumulate);

    // The offsets and tails are compared too, so a write outside C fails here.
    assertAllClose(
        values(expected), actual, TOLERANCE, m + "x" + n + "x" + k + " accumulate=" + accumulate);
  }
}
