package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.VectorGemm.LANES;
import static dev.kiln.core.backend.cpu.VectorGemm.SPECIES;

import jdk.incubator.vector.FloatVector;

/**
 * Float32 matrix product C = A B^T (or C += ...) for an A of a few rows, read straight from the
 * operands without packing. The forward pass of a linear layer on a small batch is such a product:
 * a batch of 10 rows of 9216 features times the transpose of a 2000 x 9216 weight matrix. So is the
 * weight gradient of a convolution with up to 32 output channels when it goes through a column
 * matrix ({@link Conv2dIm2col}): the output gradient [channels, positions] times the transposed
 * column matrix [taps, positions].
 *
 * <p>Why not {@link VectorGemm}: it packs B into panels, which reads and writes every value of B
 * once, and then reuses each panel for every row of A. With 10 rows there is little reuse, and B
 * (74 MB in that example) does not fit any cache, so the packing costs as much as the product. Here
 * C(i, j) is the dot product of row i of A and row j of B, both contiguous, so B comes from memory
 * once, in the order it is stored, and the few rows of A stay in the cache. One pass over two rows
 * of B serves {@link #ROW_GROUP} rows of A, in 8 vector sums. So each pair of B rows is read once
 * per group of rows of A, but only the first read reaches memory. In that example two rows take 72
 * KiB, small enough for the later passes to find them in the L2 cache.
 *
 * <p>Rows of A come in groups of {@link #ROW_GROUP}. A last group with fewer rows repeats its last
 * row in the missing places and stores only the real ones, so one kernel serves every group. With
 * one row, as when a service predicts one image at a time, 3 of every 4 multiply-adds are thrown
 * away, but the product is bound by reading B, so it still runs in a quarter or less of
 * VectorGemm's time (see the table on {@link #MAX_ROWS}).
 *
 * <p>NOTE: a product with B stored k x n, such as the layer's input gradient, stays with {@link
 * VectorGemm}. A register strip of C that reads B row by row without packing was tried. It was no
 * faster at 10 x 9216 x 2000 and 2.2 times slower at 10 x 10816 x 4096, because each depth step
 * jumps a whole row of B ahead in memory.
 *
 * <p>NOTE: each dot product is summed in LANES partial sums, one per vector lane, that are added at
 * the end. With values near the float32 maximum a partial sum can overflow where the in-order sum
 * of the other paths does not: 64 products of 1e38 and alternating 2 and -2 give NaN here and 0
 * there.
 *
 * <p>Threading: the columns of C are split into {@link CpuParallel} chunks. Each element of C is
 * summed by one thread in an order fixed by the sizes and the lane count, so the result does not
 * depend on the thread count. It does depend on the lane count: the per-lane partial sums above
 * give different bits with 8 lanes (AVX2) than with 16 (AVX-512).
 */
final class FewRowsGemm {

  /**
   * The maximum number of rows of A for which {@link VectorGemm} sends a product here.
   *
   * <p>Measured with a throwaway timing loop (median of 15 after warm-up, 2 threads) on a 2-core
   * AMD EPYC with AVX-512 and JDK 25. Milliseconds per product C = A B^T, {@link VectorGemm} / this
   * class:
   *
   * <pre>
   *   m x n x k            VectorGemm  few rows
   *   10 x 2000 x 9216        12.9       5.4     lenet-20m's first linear layer, batch 10
   *   16 x 2000 x 9216        13.4       6.4
   *   24 x 2000 x 9216        14.3       8.9
   *   32 x 2000 x 9216        17.5      11.7     the same layer at batch 32
   *   48 x 2000 x 9216        19.1      16.9
   *   32 x 4096 x 10816       39.6      27.2     lenet-48m's first linear layer, batch 32
   *   10 x 256 x 4608          0.55      0.26
   *   10 x 2000 x 64           0.15      0.08
   *   32 x 144 x 2304          0.41      0.24     default/4's weight gradient, one image
   *   16 x 9 x 9216            0.40      0.07     default/0's weight gradient, one image
   *   1 x 2000 x 9216         13.9       3.3      lenet-20m's first linear layer, one image
   *   1 x 256 x 2304           0.43      0.06     default's first linear layer, one image
   * </pre>
   *
   * <p>The two weight-gradient rows were measured later, while other builds ran, and the one-image
   * rows later still, with the same loop (median of 41).
   *
   * <p>The gain shrinks as rows are added, because VectorGemm reuses each packed panel for more of
   * them. NOTE: no crossover was measured, since this class still wins at 48 rows. The limit is the
   * batch of 32 that the benchmarks use.
   */
  static final int MAX_ROWS = 32;

  /**
   * The minimum depth for which {@link VectorGemm} sends a product here. Below 4 vectors, adding up
   * the lanes of each dot product would cost about as much as its multiply-adds (an estimate).
   */
  static final int MIN_DEPTH = 4 * LANES;

  /** Rows of A that one pass over B serves. */
  private static final int ROW_GROUP = 4;

  private FewRowsGemm() {}

  /**
   * Computes C = A B^T, or C += A B^T when {@code accumulate} is true, with the contract of {@link
   * Gemm#gemm} for an untransposed A of at most {@link #MAX_ROWS} rows and a transposed B: A(i, p)
   * is {@code a[aOffset + i * k + p]}, B^T(p, j) is {@code b[bOffset + j * k + p]}, and C(i, j) is
   * {@code c[cOffset + i * n + j]}.
   */
  static void multiply(
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
    if (m > MAX_ROWS) {
      throw new IllegalArgumentException(
          "few-rows gemm: A has " + m + " rows, more than the maximum of " + MAX_ROWS);
    }
    Operands ops = new Operands(m, n, k, a, aOffset, b, bOffset, c, cOffset, accumulate);
    CpuParallel.forEachChunk(
        n,
        (long) m * n * k,
        VectorGemm.PARALLEL_MIN_WORK,
        (chunk, first, end) -> dotProducts(ops, first, end));
  }

  /** The operands of one product, as {@link #multiply} takes them. */
  private record Operands(
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

    /** Start of row {@code i} of A, or of its last row when i is past the end. */
    int aRow(int i) {
      return aOffset + Math.min(i, m - 1) * k;
    }

    /** Adds {@code value} to C(i, j), or stores it there. */
    void put(int i, int j, float value) {
      int at = cOffset + i * n + j;
      c[at] = accumulate ? c[at] + value : value;
    }
  }

  /**
   * Computes columns [j0, j1) of C, two columns at a time. Each vector of A is loaded once for two
   * rows of B, and each vector of B once for four rows of A, so 6 loads feed 8 multiply-adds.
   */
  private static void dotProducts(Operands ops, int j0, int j1) {
    float[] lanes = new float[LANES];
    for (int j = j0; j < j1; j += 2) {
      // A last single column repeats itself as the second one, which is then not stored.
      int second = Math.min(j + 1, j1 - 1);
      for (int i = 0; i < ops.m(); i += ROW_GROUP) {
        dotGroup(ops, i, j, second, lanes);
      }
    }
  }

  /** Computes C(i..i+3, j) and C(i..i+3, second) as 8 dot products over the whole depth. */
  private static void dotGroup(Operands ops, int i, int j, int second, float[] lanes) {
    int k = ops.k();
    float[] a = ops.a();
    float[] b = ops.b();
    int a0 = ops.aRow(i);
    int a1 = ops.aRow(i + 1);
    int a2 = ops.aRow(i + 2);
    int a3 = ops.aRow(i + 3);
    int bj = ops.bOffset() + j * k;
    int bs = ops.bOffset() + second * k;

    FloatVector s00 = FloatVector.zero(SPECIES);
    FloatVector s10 = s00;
    FloatVector s20 = s00;
    FloatVector s30 = s00;
    FloatVector s01 = s00;
    FloatVector s11 = s00;
    FloatVector s21 = s00;
    FloatVector s31 = s00;

    int vectorEnd = SPECIES.loopBound(k);
    for (int p = 0; p < vectorEnd; p += LANES) {
      FloatVector b0 = FloatVector.fromArray(SPECIES, b, bj + p);
      FloatVector b1 = FloatVector.fromArray(SPECIES, b, bs + p);
      FloatVector x0 = FloatVector.fromArray(SPECIES, a, a0 + p);
      s00 = x0.fma(b0, s00);
      s01 = x0.fma(b1, s01);
      FloatVector x1 = FloatVector.fromArray(SPECIES, a, a1 + p);
      s10 = x1.fma(b0, s10);
      s11 = x1.fma(b1, s11);
      FloatVector x2 = FloatVector.fromArray(SPECIES, a, a2 + p);
      s20 = x2.fma(b0, s20);
      s21 = x2.fma(b1, s21);
      FloatVector x3 = FloatVector.fromArray(SPECIES, a, a3 + p);
      s30 = x3.fma(b0, s30);
      s31 = x3.fma(b1, s31);
    }

    // Each sum is stored by name into the scratch array here, so that no vector is passed to
    // another method: C2 boxes a vector argument into a heap object whenever it does not inline the
    // call (see VectorGemm's micro-kernel). An array of vectors would box them as well.
    int rows = Math.min(ROW_GROUP, ops.m() - i);
    boolean both = second != j;
    s00.intoArray(lanes, 0);
    storeDot(ops, i, j, vectorEnd, bj, lanes);
    if (both) {
      s01.intoArray(lanes, 0);
      storeDot(ops, i, second, vectorEnd, bs, lanes);
    }
    if (rows > 1) {
      s10.intoArray(lanes, 0);
      storeDot(ops, i + 1, j, vectorEnd, bj, lanes);
      if (both) {
        s11.intoArray(lanes, 0);
        storeDot(ops, i + 1, second, vectorEnd, bs, lanes);
      }
    }
    if (rows > 2) {
      s20.intoArray(lanes, 0);
      storeDot(ops, i + 2, j, vectorEnd, bj, lanes);
      if (both) {
        s21.intoArray(lanes, 0);
        storeDot(ops, i + 2, second, vectorEnd, bs, lanes);
      }
    }
    if (rows > 3) {
      s30.intoArray(lanes, 0);
      storeDot(ops, i + 3, j, vectorEnd, bj, lanes);
      if (both) {
        s31.intoArray(lanes, 0);
        storeDot(ops, i + 3, second, vectorEnd, bs, lanes);
      }
    }
  }

  /**
   * Finishes the dot product of row i of A with the row of B at {@code bRow}: adds the LANES
   * partial sums in {@code lanes} in lane order, then the depths past the last whole vector one at
   * a time, and stores the result at C(i, j).
   *
   * <p>The lanes go through {@code lanes}, a scratch array, because the order in which {@code
   * reduceLanes(ADD)} adds them is not specified: the compiled code and the interpreter may differ,
   * and so would the bits of the result.
   */
  private static void storeDot(Operands ops, int i, int j, int vectorEnd, int bRow, float[] lanes) {
    float[] a = ops.a();
    float[] b = ops.b();
    float total = 0f;
    for (float lane : lanes) {
      total += lane;
    }
    int aRow = ops.aRow(i);
    for (int p = vectorEnd; p < ops.k(); p++) {
      total += a[aRow + p] * b[bRow + p];
    }
    ops.put(i, j, total);
  }
}
