package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Runs the kernels of layout.cu under CPU emulation. A copy moves floats without arithmetic, so
 * every result must equal its reference bit for bit. Destinations start as NaN, so an element the
 * kernel skips fails the comparison, and an element it writes by mistake shows up as a number where
 * NaN was expected.
 */
class LayoutKernelsTest {

  private static final int BLOCK = 64;

  private static EmulatedKernels kernels;

  @BeforeAll
  static void loadKernels() {
    kernels = KernelTestSupport.kernels();
  }

  @Test
  void fillWritesEveryElement() {
    int n = 1000;
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment out = support.filled(n + 1, Float.NaN);

      // 3 blocks of 64 threads for 1000 elements, so the grid-stride loop takes several rounds.
      kernels.launch("kiln_layout_fill", Dim3.of(3), Dim3.of(BLOCK), 0, out, n, 2.5f);

      float[] expected = new float[n + 1];
      Arrays.fill(expected, 0, n, 2.5f);
      expected[n] = Float.NaN;
      assertArrayEquals(expected, KernelTestSupport.toFloats(out, n + 1), "fill of 1000 with 2.5");
    }
  }

  @Test
  void copyTransposesMatrix() {
    int rows = 5;
    int columns = 7;
    float[] x = sequence(rows * columns);
    // The output is [columns, rows]. It reads x[r][c] at r * columns + c, so along output
    // dimension 0 (c) the source stride is 1 and along dimension 1 (r) it is columns.
    int[] shape = {columns, rows};
    int[] srcStrides = {1, columns};
    int[] dstStrides = {rows, 1};

    float[] expected = new float[rows * columns];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < columns; c++) {
        expected[c * rows + r] = x[r * columns + c];
      }
    }
    assertArrayEquals(
        expected,
        copy(x, 0, srcStrides, rows * columns, 0, dstStrides, shape),
        "transpose of [5, 7]");
  }

  @Test
  void copySlicesWithOffsets() {
    // x is [4, 6], and the slice takes rows 1 and 2 and columns 2 to 4 into the middle of a larger
    // destination, at offset 3 with a row stride of 5.
    float[] x = sequence(24);
    int[] shape = {2, 3};
    int srcOffset = 1 * 6 + 2;
    int[] srcStrides = {6, 1};
    int dstOffset = 3;
    int[] dstStrides = {5, 1};
    int dstSize = 14;

    float[] expected = new float[dstSize];
    Arrays.fill(expected, Float.NaN);
    for (int r = 0; r < 2; r++) {
      for (int c = 0; c < 3; c++) {
        expected[dstOffset + r * 5 + c] = x[(1 + r) * 6 + (2 + c)];
      }
    }
    assertArrayEquals(
        expected,
        copy(x, srcOffset, srcStrides, dstSize, dstOffset, dstStrides, shape),
        "slice [1:3, 2:5] of [4, 6] at destination offset 3");
  }

  @Test
  void copyExpandsWithZeroStride() {
    // x is [3, 1] and expands to [3, 4]: dimension 1 repeats its only element.
    float[] x = {10, 20, 30};
    int[] shape = {3, 4};
    float[] expected = {10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30};
    assertArrayEquals(
        expected, copy(x, 0, new int[] {1, 0}, 12, 0, new int[] {4, 1}, shape), "expand to [3, 4]");
  }

  @Test
  void copyWritesStridedDestinationForCat() {
    // cat along dimension 1 of a [2, 3] and a [2, 2] tensor into a [2, 5] output: each input is
    // one copy, written at its column offset with the output's row stride 5.
    float[] a = {1, 2, 3, 4, 5, 6};
    float[] b = {-1, -2, -3, -4};
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment out = support.filled(10, Float.NaN);
      launchCopy(
          support, support.segmentOf(a), 0, new int[] {3, 1}, out, 0, new int[] {5, 1}, 2, 3);
      launchCopy(
          support, support.segmentOf(b), 0, new int[] {2, 1}, out, 3, new int[] {5, 1}, 2, 2);

      float[] expected = {1, 2, 3, -1, -2, 4, 5, 6, -3, -4};
      assertArrayEquals(expected, KernelTestSupport.toFloats(out, 10), "cat of [2, 3] and [2, 2]");
    }
  }

  @Test
  void copyPermutesRank4WithManyRounds() {
    // A [3, 4, 5, 6] tensor permuted by (3, 1, 0, 2): 360 elements on 2 blocks, so each thread
    // runs the grid-stride loop about three times and the index split covers all four dimensions.
    int[] inShape = {3, 4, 5, 6};
    int[] dims = {3, 1, 0, 2};
    int[] inStrides = {120, 30, 6, 1};
    int n = 360;
    float[] x = sequence(n);
    int[] shape = new int[4];
    int[] srcStrides = new int[4];
    for (int d = 0; d < 4; d++) {
      shape[d] = inShape[dims[d]];
      srcStrides[d] = inStrides[dims[d]];
    }
    int[] dstStrides = {60, 15, 5, 1};

    float[] expected = new float[n];
    int[] index = new int[4];
    for (int i = 0; i < n; i++) {
      int rest = i;
      for (int d = 3; d >= 0; d--) {
        index[d] = rest % shape[d];
        rest /= shape[d];
      }
      int source = 0;
      for (int d = 0; d < 4; d++) {
        source += index[d] * srcStrides[d];
      }
      expected[i] = x[source];
    }
    assertArrayEquals(
        expected, copy(x, 0, srcStrides, n, 0, dstStrides, shape), "permute (3, 1, 0, 2)");
  }

  @Test
  void copyOfRankZeroMovesOneElement() {
    float[] x = {7, 8, 9};
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment out = support.filled(3, Float.NaN);

      // A null geometry pointer, since rank 0 has no dimensions to describe.
      kernels.launch(
          "kiln_layout_strided_copy",
          Dim3.of(1),
          Dim3.of(32),
          0,
          support.segmentOf(x),
          out,
          MemorySegment.NULL,
          0,
          1,
          2,
          1);

      assertArrayEquals(
          new float[] {Float.NaN, 9, Float.NaN},
          KernelTestSupport.toFloats(out, 3),
          "rank 0 copy of x[2] to out[1]");
    }
  }

  /** Copies x through the layouts into a NaN-filled destination of dstSize floats. */
  private static float[] copy(
      float[] x,
      int srcOffset,
      int[] srcStrides,
      int dstSize,
      int dstOffset,
      int[] dstStrides,
      int[] shape) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment out = support.filled(dstSize, Float.NaN);
      launchCopy(
          support, support.segmentOf(x), srcOffset, srcStrides, out, dstOffset, dstStrides, shape);
      return KernelTestSupport.toFloats(out, dstSize);
    }
  }

  private static void launchCopy(
      KernelTestSupport support,
      MemorySegment src,
      int srcOffset,
      int[] srcStrides,
      MemorySegment dst,
      int dstOffset,
      int[] dstStrides,
      int... shape) {
    int rank = shape.length;
    int[] geometry = new int[3 * rank];
    System.arraycopy(shape, 0, geometry, 0, rank);
    System.arraycopy(srcStrides, 0, geometry, rank, rank);
    System.arraycopy(dstStrides, 0, geometry, 2 * rank, rank);
    int n = 1;
    for (int size : shape) {
      n *= size;
    }
    // Two blocks whatever n is, so most copies need several grid-stride rounds.
    kernels.launch(
        "kiln_layout_strided_copy",
        Dim3.of(2),
        Dim3.of(BLOCK),
        0,
        src,
        dst,
        support.segmentOf(geometry),
        rank,
        n,
        srcOffset,
        dstOffset);
  }

  /** Returns 0, 1, ..., count - 1, so every element is distinct and a misplaced one shows. */
  private static float[] sequence(int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = i;
    }
    return values;
  }
}
