package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.tolerance;
import static dev.kiln.core.backend.cpu.KernelAsserts.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class GemmTest {

  /** Sizes that are not multiples of the loop's column (256) or depth (128) blocks. */
  private static final int[][] SIZES = {{1, 1, 1}, {3, 5, 7}, {65, 33, 17}, {7, 300, 130}};

  private static final int A_OFFSET = 3;
  private static final int B_OFFSET = 5;
  private static final int C_OFFSET = 2;

  /** Spare elements after each operand, which the product must leave alone. */
  private static final int TAIL = 4;

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (DType dtype : DType.values()) {
      for (Gemm.Path path : Gemm.Path.values()) {
        if (path == Gemm.Path.VECTOR && dtype == DType.FLOAT64) {
          continue;
        }
        for (int[] size : SIZES) {
          for (int transposes = 0; transposes < 4; transposes++) {
            for (boolean accumulate : new boolean[] {false, true}) {
              cases.add(
                  Arguments.of(
                      dtype,
                      path,
                      (transposes & 1) != 0,
                      (transposes & 2) != 0,
                      size[0],
                      size[1],
                      size[2],
                      accumulate));
            }
          }
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1} transA={2} transB={3} {4}x{5}x{6} accumulate={7}")
  @MethodSource("cases")
  void gemmMatchesNaiveProduct(
      DType dtype,
      Gemm.Path path,
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      boolean accumulate) {
    Storage a = randomStorage(dtype, A_OFFSET + m * k + TAIL, 1);
    Storage b = randomStorage(dtype, B_OFFSET + k * n + TAIL, 2);
    Storage c = randomStorage(dtype, C_OFFSET + m * n + TAIL, 3);
    double[] before = values(c);

    Gemm.gemm(path, transA, transB, m, n, k, a, A_OFFSET, b, B_OFFSET, c, C_OFFSET, accumulate);

    double[] expected = before.clone();
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double sum = 0;
        for (int p = 0; p < k; p++) {
          double aip = a.get(A_OFFSET + (transA ? p * m + i : i * k + p));
          double bpj = b.get(B_OFFSET + (transB ? j * k + p : p * n + j));
          sum += aip * bpj;
        }
        int index = C_OFFSET + i * n + j;
        expected[index] = accumulate ? before[index] + sum : sum;
      }
    }
    assertAllClose(expected, c, tolerance(dtype), "C");
  }

  @Test
  void gemmOverwriteIgnoresNanInC() {
    for (Gemm.Path path : Gemm.Path.values()) {
      Storage a = randomStorage(DType.FLOAT32, 6, 1);
      Storage b = randomStorage(DType.FLOAT32, 6, 2);
      Storage c = Storage.wrap(new float[] {Float.NaN, Float.NaN, Float.NaN, Float.NaN});
      Gemm.gemm(path, false, false, 2, 2, 3, a, 0, b, 0, c, 0, false);
      for (int i = 0; i < 4; i++) {
        assertTrue(Double.isFinite(c.get(i)), path + " left NaN at C[" + i + "]");
      }
    }
  }

  @Test
  void gemmEmptyDepthZeroesC() {
    Storage a = Storage.allocate(DType.FLOAT64, 0);
    Storage b = Storage.allocate(DType.FLOAT64, 0);
    Storage c = Storage.wrap(new double[] {1, 2, 3, 4, 5, 6});
    Gemm.gemm(false, false, 2, 3, 0, a, 0, b, 0, c, 0, false);
    assertAllClose(new double[6], c, 0, "C");
  }

  @Test
  void gemmEmptyDepthAccumulateKeepsC() {
    Storage a = Storage.allocate(DType.FLOAT64, 0);
    Storage b = Storage.allocate(DType.FLOAT64, 0);
    Storage c = Storage.wrap(new double[] {1, 2, 3, 4, 5, 6});
    Gemm.gemm(false, false, 2, 3, 0, a, 0, b, 0, c, 0, true);
    assertAllClose(new double[] {1, 2, 3, 4, 5, 6}, c, 0, "C");
  }

  @Test
  void gemmMixedDtypesRejected() {
    Storage a = Storage.allocate(DType.FLOAT32, 4);
    Storage b = Storage.allocate(DType.FLOAT64, 4);
    Storage c = Storage.allocate(DType.FLOAT32, 4);
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Gemm.gemm(false, false, 2, 2, 2, a, 0, b, 0, c, 0, false));
    assertEquals(
        "gemm needs one dtype, got A float32, B float64, C float32: convert the operands first",
        error.getMessage());
  }

  @Test
  void gemmOperandPastStorageRejected() {
    Storage a = Storage.allocate(DType.FLOAT64, 6);
    Storage b = Storage.allocate(DType.FLOAT64, 6);
    Storage c = Storage.allocate(DType.FLOAT64, 4);
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Gemm.gemm(false, false, 2, 2, 3, a, 1, b, 0, c, 0, false));
    assertEquals(
        "gemm operand A needs 6 elements from offset 1 but its storage has 6: check the sizes and"
            + " the offset",
        error.getMessage());
  }
}
