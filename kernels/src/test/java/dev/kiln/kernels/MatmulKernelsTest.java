package dev.kiln.kernels;

import static dev.kiln.kernels.KernelTestSupport.toFloats;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the GEMM kernels of matmul.cu under CPU emulation, with every combination of transposes and
 * accumulation, and compares them with a double-precision product computed as kiln's CPU Gemm
 * defines it.
 */
class MatmulKernelsTest {

  /**
   * Unit roundoff of float32, 2^-24. By the standard rounding-error bound for summation, a float
   * dot product of k terms, in any order, is within k * u / (1 - k * u) of the exact one. The bound
   * is relative to the sum of the magnitudes of the terms, and an accumulated C adds one term.
   */
  private static final double UNIT_ROUNDOFF = 0x1p-24;

  /** The kernel that computes a product in slices of k. */
  private static final String SLICES = "kiln_matmul_tiled_slices";

  private final EmulatedKernels kernels = KernelTestSupport.kernels();
  private KernelTestSupport support;

  @BeforeEach
  void open() {
    support = new KernelTestSupport();
  }

  @AfterEach
  void close() {
    support.close();
  }

  /**
   * One product: kernel, sizes, transposes and accumulation. gridRows is the launch grid's y
   * extent, or 0 for one block row per row tile. A smaller value makes each block row loop over
   * several tiles, as the launcher does past CUDA's limit of 65535. sliceDepth is the depth of each
   * slice of k for {@value #SLICES}, followed by {@code kiln_matmul_sum_slices}, and 0 for the
   * other kernels.
   */
  record GemmCase(
      String kernel,
      int m,
      int n,
      int k,
      boolean transA,
      boolean transB,
      boolean accumulate,
      int gridRows,
      int sliceDepth) {
    GemmCase(
        String kernel, int m, int n, int k, boolean transA, boolean transB, boolean accumulate) {
      this(kernel, m, n, k, transA, transB, accumulate, 0, 0);
    }

    GemmCase(
        String kernel,
        int m,
        int n,
        int k,
        boolean transA,
        boolean transB,
        boolean accumulate,
        int gridRows) {
      this(kernel, m, n, k, transA, transB, accumulate, gridRows, 0);
    }

    /** Returns the number of slices of k: ceil(k / sliceDepth). */
    int slices() {
      return (k + sliceDepth - 1) / sliceDepth;
    }

    @Override
    public String toString() {
      return String.format(
          "%s %dx%dx%d%s%s%s%s%s",
          kernel.substring("kiln_matmul_".length()),
          m,
          n,
          k,
          transA ? " transA" : "",
          transB ? " transB" : "",
          accumulate ? " accumulate" : "",
          gridRows > 0 ? " gridRows=" + gridRows : "",
          sliceDepth > 0 ? " sliceDepth=" + sliceDepth : "");
    }
  }

  static Stream<GemmCase> cases() {
    List<GemmCase> cases = new ArrayList<>();
    for (String kernel :
        new String[] {"kiln_matmul_naive", "kiln_matmul_tiled", "kiln_matmul_tiled128"}) {
      for (int flags = 0; flags < 8; flags++) {
        // 67 x 45 x 131: no size is a multiple of a tile (64, 128) or a depth step (16, 8).
        cases.add(
            new GemmCase(
                kernel, 67, 45, 131, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0));
      }
      // Several tiles in both directions, and degenerate sizes.
      cases.add(new GemmCase(kernel, 130, 70, 33, false, false, false));
      cases.add(new GemmCase(kernel, 1, 1, 1, true, true, false));
      cases.add(new GemmCase(kernel, 5, 200, 3, false, true, true));
      cases.add(new GemmCase(kernel, 9, 7, 0, false, false, true));
    }
    // Fewer block rows than row tiles: 6 tiles of 64 rows over 4 block rows, and 21 strips of 16
    // rows over 2 and 3 block rows, so some block rows take more tiles than others.
    cases.add(new GemmCase("kiln_matmul_tiled", 323, 70, 19, false, false, false, 4));
    cases.add(new GemmCase("kiln_matmul_tiled", 323, 70, 19, true, true, true, 1));
    cases.add(new GemmCase("kiln_matmul_naive", 323, 37, 19, false, false, false, 2));
    cases.add(new GemmCase("kiln_matmul_naive", 323, 37, 19, true, false, true, 3));
    // The 128 x 128 kernel: several tiles both ways with every transpose (3 x 3 tiles), k equal
    // to one depth step, and row tiles looped over fewer block rows (3 tiles over 2 block rows).
    for (int flags = 0; flags < 4; flags++) {
      cases.add(
          new GemmCase(
              "kiln_matmul_tiled128", 260, 300, 21, (flags & 1) != 0, (flags & 2) != 0, false));
    }
    cases.add(new GemmCase("kiln_matmul_tiled128", 129, 128, 8, false, false, true));
    cases.add(new GemmCase("kiln_matmul_tiled128", 323, 70, 19, false, true, false, 2));
    cases.add(new GemmCase("kiln_matmul_tiled128", 323, 70, 19, true, false, true, 1));
    // An even number of 8-deep steps ends a tile on the second buffer, so the next row tile of the
    // same block must start again from the first one.
    cases.add(new GemmCase("kiln_matmul_tiled128", 323, 70, 16, false, false, false, 1));
    cases.add(new GemmCase("kiln_matmul_tiled128", 400, 70, 40, true, true, true, 2));
    // Slices of k: 131 steps in slices of 32 (the last one 3 deep), with every transpose and
    // accumulation, then slices of 20, which split a 16-step panel, and fewer block rows than
    // tiles.
    for (int flags = 0; flags < 8; flags++) {
      cases.add(
          new GemmCase(
              SLICES, 67, 45, 131, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, 0, 32));
    }
    cases.add(new GemmCase(SLICES, 130, 70, 100, false, true, false, 0, 20));
    cases.add(new GemmCase(SLICES, 200, 9, 70, true, false, true, 1, 16));
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void productMatchesReference(GemmCase gemm) {
    int m = gemm.m();
    int n = gemm.n();
    int k = gemm.k();
    float[] a = support.randomFloats(m * k);
    float[] b = support.randomFloats(k * n);
    float[] c = support.randomFloats(m * n);
    if (!gemm.accumulate()) {
      c[0] = Float.NaN; // must not leak into the result when C is only written
    }
    MemorySegment cSegment = support.segmentOf(c);
    launch(gemm, support.segmentOf(a), support.segmentOf(b), cSegment);

    float[] actual = toFloats(cSegment, m * n);
    double gamma = (k + 1) * UNIT_ROUNDOFF / (1 - (k + 1) * UNIT_ROUNDOFF);
    for (int row = 0; row < m; row++) {
      for (int col = 0; col < n; col++) {
        double sum = gemm.accumulate() ? c[row * n + col] : 0;
        double magnitude = Math.abs(sum);
        for (int p = 0; p < k; p++) {
          double term = elementA(a, gemm, row, p) * elementB(b, gemm, p, col);
          sum += term;
          magnitude += Math.abs(term);
        }
        double bound = gamma * magnitude;
        double value = actual[row * n + col];
        if (!(Math.abs(value - sum) <= bound)) {
          fail(
              String.format(
                  "%s: C[%d, %d] is %.9g but expected %.9g (bound %.3g)",
                  gemm, row, col, value, sum, bound));
        }
      }
    }
  }

  @Test
  void bothTiledKernelsAgreeOnLargerProduct() {
    int m = 300;
    int n = 270;
    int k = 100;
    GemmCase tiled = new GemmCase("kiln_matmul_tiled", m, n, k, false, true, false);
    GemmCase tiled128 = new GemmCase("kiln_matmul_tiled128", m, n, k, false, true, false);
    MemorySegment a = support.segmentOf(support.randomFloats(m * k));
    MemorySegment b = support.segmentOf(support.randomFloats(n * k));
    MemorySegment fromTiled = support.floats(m * n);
    MemorySegment fromTiled128 = support.floats(m * n);
    launch(tiled, a, b, fromTiled);
    launch(tiled128, a, b, fromTiled128);

    float[] expected = toFloats(fromTiled, m * n);
    double[] reference = new double[expected.length];
    for (int i = 0; i < expected.length; i++) {
      reference[i] = expected[i];
    }
    // As below: 100 products of numbers below 1 in magnitude, summed in different orders.
    KernelTestSupport.assertClose(
        "tiled128 versus tiled", reference, toFloats(fromTiled128, expected.length), 1e-4, 0);
  }

  @Test
  void tiledAndNaiveAgreeOnLargerProduct() {
    GemmCase naive = new GemmCase("kiln_matmul_naive", 150, 129, 77, true, false, false);
    GemmCase tiled = new GemmCase("kiln_matmul_tiled", 150, 129, 77, true, false, false);
    MemorySegment a = support.segmentOf(support.randomFloats(150 * 77));
    MemorySegment b = support.segmentOf(support.randomFloats(77 * 129));
    MemorySegment fromNaive = support.floats(150 * 129);
    MemorySegment fromTiled = support.floats(150 * 129);
    launch(naive, a, b, fromNaive);
    launch(tiled, a, b, fromTiled);

    float[] expected = toFloats(fromNaive, 150 * 129);
    double[] reference = new double[expected.length];
    for (int i = 0; i < expected.length; i++) {
      reference[i] = expected[i];
    }
    // Both kernels sum 77 products of numbers below 1 in magnitude, in different orders. Each
    // result is within 78 * 77 * 2^-24 (about 3.6e-4) of the exact sum in the worst case, so the
    // two may differ by up to about 7e-4. The 1e-4 tolerance still holds in practice, because
    // rounding errors largely cancel.
    KernelTestSupport.assertClose(
        "tiled versus naive", reference, toFloats(fromTiled, expected.length), 1e-4, 0);
  }

  private void launch(GemmCase gemm, MemorySegment a, MemorySegment b, MemorySegment c) {
    if (gemm.kernel().equals(SLICES)) {
      launchSlices(gemm, a, b, c);
      return;
    }
    // A block covers 128 x 128, 64 x 64 or 16 x 16 elements of C.
    int tile =
        switch (gemm.kernel()) {
          case "kiln_matmul_tiled128" -> 128;
          case "kiln_matmul_tiled" -> 64;
          default -> 16;
        };
    Dim3 block = Dim3.of(16, 16);
    int rows = gemm.gridRows() > 0 ? gemm.gridRows() : Dim3.blocksFor(gemm.m(), tile);
    Dim3 grid = Dim3.of(Dim3.blocksFor(gemm.n(), tile), rows);
    kernels.launch(
        gemm.kernel(),
        grid,
        block,
        0,
        a,
        b,
        c,
        gemm.m(),
        gemm.n(),
        gemm.k(),
        gemm.transA() ? 1 : 0,
        gemm.transB() ? 1 : 0,
        gemm.accumulate() ? 1 : 0);
  }

  /**
   * Computes the product in slices of k into partial matrices that start as NaN, so that a partial
   * element left unwritten shows in C. Then adds the slices into C with 3 blocks of 64 threads.
   * That is fewer threads than elements, so each thread sums several elements.
   */
  private void launchSlices(GemmCase gemm, MemorySegment a, MemorySegment b, MemorySegment c) {
    int m = gemm.m();
    int n = gemm.n();
    float[] poison = new float[gemm.slices() * m * n];
    Arrays.fill(poison, Float.NaN);
    MemorySegment partial = support.segmentOf(poison);
    int rows = gemm.gridRows() > 0 ? gemm.gridRows() : Dim3.blocksFor(m, 64);
    kernels.launch(
        SLICES,
        new Dim3(Dim3.blocksFor(n, 64), rows, gemm.slices()),
        Dim3.of(16, 16),
        0,
        a,
        b,
        partial,
        m,
        n,
        gemm.k(),
        gemm.transA() ? 1 : 0,
        gemm.transB() ? 1 : 0,
        gemm.sliceDepth());
    kernels.launch(
        "kiln_matmul_sum_slices",
        Dim3.of(3),
        Dim3.of(64),
        0,
        partial,
        c,
        m,
        n,
        gemm.slices(),
        gemm.accumulate() ? 1 : 0);
  }

  /** op(A)[row, p]: A is m x k, or k x m when transposed. */
  private static double elementA(float[] a, GemmCase gemm, int row, int p) {
    return gemm.transA() ? a[p * gemm.m() + row] : a[row * gemm.k() + p];
  }

  /** op(B)[p, col]: B is k x n, or n x k when transposed. */
  private static double elementB(float[] b, GemmCase gemm, int p, int col) {
    return gemm.transB() ? b[col * gemm.k() + p] : b[p * gemm.n() + col];
  }
}
