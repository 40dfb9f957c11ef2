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

    Product product = new Product(m, n, k, gemm.transA(), gemm.transB());
    float[] actual = toFloats(cSegment, m * n);
    for (int row = 0; row < m; row++) {
      for (int col = 0; col < n; col++) {
        double start = gemm.accumulate() ? c[row * n + col] : 0;
        double[] terms = product.terms(a, 0, b, 0, row, col);
        assertWithinBound(gemm.toString(), row, col, actual[row * n + col], start, terms);
      }
    }
  }

  /**
   * The sizes and transposes of one product of packed row-major matrices, and the indexing of its
   * operands: op(A) is m x k (A stored k x m when transposed), op(B) is k x n (B stored n x k).
   */
  record Product(int m, int n, int k, boolean transA, boolean transB) {

    /** Returns op(A)[row, p] of the matrix A that starts at a[offset]. */
    double elementA(float[] a, long offset, int row, int p) {
      return a[(int) (offset + (transA ? (long) p * m + row : (long) row * k + p))];
    }

    /** Returns op(B)[p, col] of the matrix B that starts at b[offset]. */
    double elementB(float[] b, long offset, int p, int col) {
      return b[(int) (offset + (transB ? (long) col * k + p : (long) p * n + col))];
    }

    /** Returns the k terms op(A)[row, p] * op(B)[p, col] of element (row, col), in double. */
    double[] terms(float[] a, long offsetA, float[] b, long offsetB, int row, int col) {
      double[] terms = new double[k];
      for (int p = 0; p < k; p++) {
        terms[p] = elementA(a, offsetA, row, p) * elementB(b, offsetB, p, col);
      }
      return terms;
    }
  }

  /**
   * Fails unless {@code value} is within the float32 rounding bound of start plus the terms, summed
   * exactly in double: gamma(count + 1) times the sum of their magnitudes (see {@link
   * #UNIT_ROUNDOFF}).
   */
  private static void assertWithinBound(
      String label, int row, int col, double value, double start, double[] terms) {
    double sum = start;
    double magnitude = Math.abs(start);
    for (double term : terms) {
      sum += term;
      magnitude += Math.abs(term);
    }
    double count = terms.length + 1;
    double bound = count * UNIT_ROUNDOFF / (1 - count * UNIT_ROUNDOFF) * magnitude;
    if (!(Math.abs(value - sum) <= bound)) {
      fail(
          String.format(
              "%s: C[%d, %d] is %.9g but expected %.9g (bound %.3g)",
              label, row, col, value, sum, bound));
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
        gemm.accumulate() ? 1 : 0,
        1,
        0L,
        0L,
        0L);
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
        gemm.sliceDepth(),
        1,
        0L,
        0L);
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

  /**
   * Floats between consecutive matrices of an operand that is not shared, so strides exceed sizes.
   */
  private static final int GAP = 3;

  /** Value of the gaps between the C matrices before a launch, which no kernel may overwrite. */
  private static final float GAP_VALUE = 1234.5f;

  /**
   * A batch of products in one launch of a full-product kernel. An operand marked shared has stride
   * 0, so that every product reads one matrix, and every other operand, C included, has a stride of
   * its matrix size plus {@value #GAP}. gridLayers is the grid's z extent, below batches where the
   * layers must loop over the products as they do past CUDA's limit of 65535.
   */
  record BatchCase(
      String kernel,
      int m,
      int n,
      int k,
      boolean transA,
      boolean transB,
      boolean accumulate,
      int batches,
      boolean sharedA,
      boolean sharedB,
      int gridLayers) {

    Product product() {
      return new Product(m, n, k, transA, transB);
    }

    long strideA() {
      return sharedA ? 0 : (long) m * k + GAP;
    }

    long strideB() {
      return sharedB ? 0 : (long) k * n + GAP;
    }

    long strideC() {
      return (long) m * n + GAP;
    }

    /** Returns the tile edge of the kernel, 16 for the naive kernel's strips. */
    int tile() {
      return switch (kernel) {
        case "kiln_matmul_tiled128" -> 128;
        case "kiln_matmul_tiled" -> 64;
        default -> 16;
      };
    }

    @Override
    public String toString() {
      return String.format(
          "%s %dx%dx%d x%d%s%s%s%s%s over %d layers",
          kernel.substring("kiln_matmul_".length()),
          m,
          n,
          k,
          batches,
          transA ? " transA" : "",
          transB ? " transB" : "",
          accumulate ? " accumulate" : "",
          sharedA ? " sharedA" : "",
          sharedB ? " sharedB" : "",
          gridLayers);
    }
  }

  static Stream<BatchCase> batchCases() {
    List<BatchCase> cases = new ArrayList<>();
    for (String kernel :
        new String[] {"kiln_matmul_naive", "kiln_matmul_tiled", "kiln_matmul_tiled128"}) {
      // Every transpose, with and without accumulation, and A shared (a convolution's weight in
      // the forward pass), B shared, or neither. 67 rows cross the 64-row tile.
      for (int flags = 0; flags < 8; flags++) {
        boolean transA = (flags & 1) != 0;
        boolean transB = (flags & 2) != 0;
        boolean accumulate = (flags & 4) != 0;
        int sharing = flags % 3;
        cases.add(
            new BatchCase(
                kernel, 67, 45, 21, transA, transB, accumulate, 3, sharing == 1, sharing == 2, 3));
      }
      // Five products over two layers along z: layer 0 takes products 0, 2 and 4.
      cases.add(new BatchCase(kernel, 20, 33, 9, false, true, false, 5, true, false, 2));
      cases.add(new BatchCase(kernel, 20, 33, 9, true, false, true, 5, false, false, 1));
    }
    // Several tiles of the 128 x 128 kernel in each product, both operands shared.
    cases.add(
        new BatchCase("kiln_matmul_tiled128", 130, 129, 10, false, false, false, 2, true, true, 2));
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("batchCases")
  void batchedProductMatchesReference(BatchCase batch) {
    int m = batch.m();
    int n = batch.n();
    int k = batch.k();
    int last = batch.batches() - 1;
    float[] a = support.randomFloats((int) (last * batch.strideA() + m * k));
    float[] b = support.randomFloats((int) (last * batch.strideB() + k * n));
    float[] c = support.randomFloats((int) (last * batch.strideC() + m * n));
    for (int z = 0; z < batch.batches(); z++) {
      long offset = z * batch.strideC();
      Arrays.fill(
          c, (int) (offset + m * n), (int) Math.min(c.length, offset + batch.strideC()), GAP_VALUE);
      if (!batch.accumulate()) {
        c[(int) offset] = Float.NaN; // must not leak into the result when C is only written
      }
    }
    MemorySegment cSegment = support.segmentOf(c);
    kernels.launch(
        batch.kernel(),
        new Dim3(
            Dim3.blocksFor(n, batch.tile()), Dim3.blocksFor(m, batch.tile()), batch.gridLayers()),
        Dim3.of(16, 16),
        0,
        support.segmentOf(a),
        support.segmentOf(b),
        cSegment,
        m,
        n,
        k,
        batch.transA() ? 1 : 0,
        batch.transB() ? 1 : 0,
        batch.accumulate() ? 1 : 0,
        batch.batches(),
        batch.strideA(),
        batch.strideB(),
        batch.strideC());

    float[] actual = toFloats(cSegment, c.length);
    Product product = batch.product();
    for (int z = 0; z < batch.batches(); z++) {
      long offsetC = z * batch.strideC();
      for (int row = 0; row < m; row++) {
        for (int col = 0; col < n; col++) {
          int index = (int) (offsetC + (long) row * n + col);
          double start = batch.accumulate() ? c[index] : 0;
          double[] terms = product.terms(a, z * batch.strideA(), b, z * batch.strideB(), row, col);
          assertWithinBound(batch + ", product " + z, row, col, actual[index], start, terms);
        }
      }
      for (long gap = offsetC + (long) m * n;
          gap < Math.min(c.length, offsetC + batch.strideC());
          gap++) {
        if (actual[(int) gap] != GAP_VALUE) {
          fail(
              String.format(
                  "%s: the gap after product %d was overwritten at %d: %s",
                  batch, z, gap, actual[(int) gap]));
        }
      }
    }
  }

  /**
   * The sum of a batch of products, C = sum over i of op(A_i) op(B_i), computed by {@value #SLICES}
   * over the batches * k steps in slices of sliceDepth, then added up by {@code
   * kiln_matmul_sum_slices}. gridLayers is the grid's z extent, below the number of slices where
   * the layers must loop.
   */
  record BatchSumCase(
      int m,
      int n,
      int k,
      boolean transA,
      boolean transB,
      boolean accumulate,
      int batches,
      boolean sharedA,
      int sliceDepth,
      int gridLayers) {

    Product product() {
      return new Product(m, n, k, transA, transB);
    }

    long strideA() {
      return sharedA ? 0 : (long) m * k + GAP;
    }

    long strideB() {
      return (long) k * n + GAP;
    }

    int slices() {
      return (int) (((long) batches * k + sliceDepth - 1) / sliceDepth);
    }

    @Override
    public String toString() {
      return String.format(
          "%dx%dx%d x%d%s%s%s%s sliceDepth=%d over %d layers",
          m,
          n,
          k,
          batches,
          transA ? " transA" : "",
          transB ? " transB" : "",
          accumulate ? " accumulate" : "",
          sharedA ? " sharedA" : "",
          sliceDepth,
          gridLayers);
    }
  }

  static Stream<BatchSumCase> batchSumCases() {
    List<BatchSumCase> cases = new ArrayList<>();
    // 3 products of 37 steps in slices of 16: 7 slices, most of which end inside a product, with
    // every transpose. 70 x 65 is two tiles each way.
    for (int flags = 0; flags < 8; flags++) {
      boolean transA = (flags & 1) != 0;
      boolean transB = (flags & 2) != 0;
      boolean accumulate = (flags & 4) != 0;
      cases.add(new BatchSumCase(70, 65, 37, transA, transB, accumulate, 3, flags % 2 == 0, 16, 7));
    }
    // A slice of 80 steps covers two whole products and part of a third.
    cases.add(new BatchSumCase(9, 14, 37, false, true, false, 4, false, 80, 2));
    // One slice for the whole sum.
    cases.add(new BatchSumCase(9, 14, 37, true, false, true, 3, true, 1000, 1));
    // 7 slices over 2 layers along z, so layer 0 takes slices 0, 2, 4 and 6.
    cases.add(new BatchSumCase(9, 14, 37, false, false, false, 3, false, 16, 2));
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("batchSumCases")
  void batchSumInSlicesMatchesReference(BatchSumCase sum) {
    int m = sum.m();
    int n = sum.n();
    int k = sum.k();
    int last = sum.batches() - 1;
    float[] a = support.randomFloats((int) (last * sum.strideA() + m * k));
    float[] b = support.randomFloats((int) (last * sum.strideB() + k * n));
    float[] c = support.randomFloats(m * n);
    if (!sum.accumulate()) {
      c[0] = Float.NaN;
    }
    float[] poison = new float[sum.slices() * m * n];
    Arrays.fill(poison, Float.NaN);
    MemorySegment partial = support.segmentOf(poison);
    MemorySegment cSegment = support.segmentOf(c);
    kernels.launch(
        SLICES,
        new Dim3(Dim3.blocksFor(n, 64), Dim3.blocksFor(m, 64), sum.gridLayers()),
        Dim3.of(16, 16),
        0,
        support.segmentOf(a),
        support.segmentOf(b),
        partial,
        m,
        n,
        k,
        sum.transA() ? 1 : 0,
        sum.transB() ? 1 : 0,
        sum.sliceDepth(),
        sum.batches(),
        sum.strideA(),
        sum.strideB());
    kernels.launch(
        "kiln_matmul_sum_slices",
        Dim3.of(2),
        Dim3.of(64),
        0,
        partial,
        cSegment,
        m,
        n,
        sum.slices(),
        sum.accumulate() ? 1 : 0);

    float[] actual = toFloats(cSegment, m * n);
    Product product = sum.product();
    for (int row = 0; row < m; row++) {
      for (int col = 0; col < n; col++) {
        double[] terms = new double[sum.batches() * k];
        for (int z = 0; z < sum.batches(); z++) {
          double[] productTerms =
              product.terms(a, z * sum.strideA(), b, z * sum.strideB(), row, col);
          System.arraycopy(productTerms, 0, terms, z * k, k);
        }
        double start = sum.accumulate() ? c[row * n + col] : 0;
        assertWithinBound(sum.toString(), row, col, actual[row * n + col], start, terms);
      }
    }
  }
}
