package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Compares {@link VectorGemm} with the plain loop of {@link Gemm}, which is the reference. */
class VectorGemmTest {

  /**
   * m x n x k sizes around the tile (6 x 32 with 16 lanes) and the blocks (96 rows, 512 columns,
   * depth 256): single elements, partial tiles, partial blocks, several depth blocks, and sizes
   * large enough (m * n * k of 2^20 and more) to be split across threads.
   *
   * <p>With an untransposed A and a transposed B, the sizes of at most {@link FewRowsGemm#MAX_ROWS}
   * rows and a depth of at least {@link FewRowsGemm#MIN_DEPTH} run in {@link FewRowsGemm}, not in
   * the micro-kernel: {5, 31, 300}, {13, 530, 70} and {16, 1100, 90}. {@link #panelPathMatchesLoop}
   * runs those through the micro-kernel too.
   */
  private static final int[][] SIZES = {
    {1, 1, 1},
    {1, 17, 1},
    {6, 32, 1},
    {7, 33, 5},
    {5, 31, 300},
    {97, 45, 257},
    {13, 530, 70},
    {200, 9, 600},
    {16, 1100, 90},
    {130, 70, 515}
  };

  private static final int A_OFFSET = 3;
  private static final int B_OFFSET = 5;
  private static final int C_OFFSET = 2;
  private static final int TAIL = 4;

  /** Float32 sums of up to 600 products, in a different order from the loop. */
  private static final double TOLERANCE = 1e-5;

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (int[] size : SIZES) {
      for (int transposes = 0; transposes < 4; transposes++) {
        for (boolean accumulate : new boolean[] {false, true}) {
          cases.add(
              Arguments.of(
                  (transposes & 1) != 0,
                  (transposes & 2) != 0,
                  size[0],
                  size[1],
                  size[2],
                  accumulate));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "transA={0} transB={1} {2}x{3}x{4} accumulate={5}")
  @MethodSource("cases")
  void vectorMatchesLoop(boolean transA, boolean transB, int m, int n, int k, boolean accumulate) {
    Storage a = randomStorage(DType.FLOAT32, A_OFFSET + m * k + TAIL, 1);
    Storage b = randomStorage(DType.FLOAT32, B_OFFSET + k * n + TAIL, 2);
    Storage expected = randomStorage(DType.FLOAT32, C_OFFSET + m * n + TAIL, 3);
    Storage actual = expected.copy();

    Gemm.gemm(
        Gemm.Path.LOOP,
        transA,
        transB,
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
    Gemm.gemm(
        Gemm.Path.VECTOR,
        transA,
        transB,
        m,
        n,
        k,
        a,
        A_OFFSET,
        b,
        B_OFFSET,
        actual,
        C_OFFSET,
        accumulate);

    // The offsets and tails are compared too, so a write outside C fails here.
    assertAllClose(values(expected), actual, TOLERANCE, "C");
  }

  /**
   * Returns products of few rows of A and a transposed B: the three sizes of {@link #SIZES} that
   * {@link Gemm} sends to {@link FewRowsGemm}, and 32 and 33 rows on either side of {@link
   * FewRowsGemm#MAX_ROWS}. {@link #panelPathMatchesLoop} runs them all through the packing and the
   * micro-kernel.
   */
  static Stream<Arguments> fewRowsCases() {
    int[][] sizes = {{5, 31, 300}, {13, 530, 70}, {16, 1100, 90}, {32, 70, 515}, {33, 70, 515}};
    List<Arguments> cases = new ArrayList<>();
    for (int[] size : sizes) {
      for (boolean accumulate : new boolean[] {false, true}) {
        cases.add(Arguments.of(size[0], size[1], size[2], accumulate));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}x{1}x{2} accumulate={3}")
  @MethodSource("fewRowsCases")
  void panelPathMatchesLoop(int m, int n, int k, boolean accumulate) {
    Storage a = randomStorage(DType.FLOAT32, A_OFFSET + m * k + TAIL, 1);
    Storage b = randomStorage(DType.FLOAT32, B_OFFSET + k * n + TAIL, 2);
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
    // B is stored n x k, so B(p, j) is at depth stride 1 and column stride k.
    VectorGemm.multiply(
        m,
        n,
        k,
        a.floats(),
        A_OFFSET,
        k,
        1,
        new StridedPanels(b.floats(), B_OFFSET, 1, k),
        actual.floats(),
        C_OFFSET,
        n,
        accumulate);

    assertAllClose(values(expected), actual, TOLERANCE, "C");
  }

  /**
   * Checks that each element of C is summed in the same order however the columns are split: the
   * whole product, which is split over the threads, equals bit for bit the same product computed
   * one column slice at a time. Slices of 1, 7 and 45 columns cut through tiles and panels.
   */
  @ParameterizedTest(name = "transB={0}")
  @ValueSource(booleans = {false, true})
  void columnSlicesGiveSameBits(boolean transB) {
    int m = 70;
    int n = 530;
    int k = 300;
    Storage a = randomStorage(DType.FLOAT32, m * k, 1);
    Storage b = randomStorage(DType.FLOAT32, k * n, 2);
    float[] whole = new float[m * n];
    multiplyColumns(transB, m, n, k, a.floats(), b.floats(), 0, n, whole);

    for (int width : new int[] {1, 7, 45}) {
      float[] sliced = new float[m * n];
      for (int j0 = 0; j0 < n; j0 += width) {
        multiplyColumns(
            transB, m, n, k, a.floats(), b.floats(), j0, Math.min(n, j0 + width), sliced);
      }
      assertArrayEquals(whole, sliced, "slices of " + width + " columns");
    }
    assertEquals(
        2,
        CpuParallel.chunkCount(Math.ceilDiv(n, VectorGemm.NR)),
        "the whole product must be split: set -Dkiln.threads=2 for the core tests");
  }

  /**
   * Computes columns [j0, j1) of C = A B into the m x n matrix {@code c} on the panel path, for a B
   * stored k x n, or n x k when {@code transB} is set.
   */
  private static void multiplyColumns(
      boolean transB, int m, int n, int k, float[] a, float[] b, int j0, int j1, float[] c) {
    PanelSource slice =
        transB ? new StridedPanels(b, j0 * k, 1, k) : new StridedPanels(b, j0, n, 1);
    VectorGemm.multiply(m, j1 - j0, k, a, 0, k, 1, slice, c, j0, n, false);
  }

  @Test
  void vectorRepeatsBitForBit() {
    int m = 70;
    int n = 530;
    int k = 300;
    Storage a = randomStorage(DType.FLOAT32, m * k, 1);
    Storage b = randomStorage(DType.FLOAT32, k * n, 2);
    Storage first = Storage.allocate(DType.FLOAT32, m * n);
    Storage second = Storage.allocate(DType.FLOAT32, m * n);

    Gemm.gemm(Gemm.Path.VECTOR, false, true, m, n, k, a, 0, b, 0, first, 0, false);
    Gemm.gemm(Gemm.Path.VECTOR, false, true, m, n, k, a, 0, b, 0, second, 0, false);

    assertArrayEquals(first.floats(), second.floats());
  }

  @Test
  void vectorRejectsFloat64() {
    Storage a = Storage.allocate(DType.FLOAT64, 4);
    assertThrows(
        IllegalArgumentException.class,
        () -> Gemm.gemm(Gemm.Path.VECTOR, false, false, 2, 2, 2, a, 0, a, 0, a.copy(), 0, false));
  }
}
