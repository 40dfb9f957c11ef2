package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 matrix product C = op(A) op(B) (or C += ...) with packed panels and a register-blocked
 * micro-kernel on the Vector API. {@link Gemm} decides when to call it and checks the arguments,
 * and calls it only when {@link VectorSupport#available()}, because it does not load without
 * jdk.incubator.vector.
 *
 * <p>Blocking, outermost first: columns of C in blocks of {@link #COLUMN_BLOCK}, the depth k in
 * blocks of {@link #DEPTH_BLOCK}, rows of C in blocks of {@link #ROW_BLOCK}. For each (column,
 * depth) block, B is packed into panels of {@link #NR} columns, each panel stored depth-major so
 * that the micro-kernel reads it front to back. A {@link PanelSource} does that packing, so B can
 * be a strided array ({@link StridedPanels}) or a matrix that exists only implicitly, such as the
 * column matrix of a convolution ({@link ConvPanels}). For each row block A is packed the same way
 * into panels of {@link #MR} rows. The micro-kernel then keeps an MR x NR tile of C in 12 vector
 * registers and, for each depth step, loads two vectors of B, broadcasts MR values of A and does 12
 * fused multiply-adds. Panels past the edge of the matrix are padded with zeros, and the tile is
 * cut to size only when it is stored.
 *
 * <p>Why it is faster than the plain i-k-j loop: the loop loads and stores a row of C for every
 * multiply-add, while the micro-kernel does 12 FMAs per 2 vector loads and 6 broadcasts, and the
 * packed panels turn transposed operands into unit-stride reads that stay in L1 and L2.
 *
 * <p>Threading: the columns of C (or its rows, when C has fewer columns than rows) are split into
 * {@link CpuParallel} chunks, aligned to whole panels, and each chunk runs the serial algorithm on
 * its own part of C with the packing buffers of its thread's {@link Workspace}. Every element of C
 * is summed by one thread in the same depth order whatever the chunking, so the result does not
 * depend on the thread count.
 */
final class VectorGemm {

  static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  /** Lanes per vector: 16 with AVX-512, 8 with AVX2. */
  static final int LANES = SPECIES.length();

  /** Rows of the register tile. */
  static final int MR = 6;

  /** Columns of the register tile: two vectors. */
  static final int NR = 2 * LANES;

  /**
   * Depth of one packed block. With 16 lanes an A panel takes 6 KiB and a B panel 32 KiB, about the
   * size of a 32-48 KiB L1 data cache.
   */
  static final int DEPTH_BLOCK = 256;

  /** Rows of C per packed A block, a multiple of MR, so the A block (96 KiB) stays in L2. */
  static final int ROW_BLOCK = 16 * MR;

  /**
   * Multiply-adds from which a product is split over the pool. A product below about a million
   * costs more to hand over to another thread than to run here: an estimate, not measured.
   */
  static final long PARALLEL_MIN_WORK = 1L << 20;

  /** Columns of C per packed B block, a multiple of NR: 512 KiB with 16 lanes, for the L2 cache. */
  static final int COLUMN_BLOCK = 16 * NR;

  private VectorGemm() {}

  /**
   * Computes the product with the same contract as {@link Gemm#gemm}. A(i, p) is read at {@code
   * a[aOffset + i * k + p]}, or at {@code a[aOffset + p * m + i]} when {@code transA} is set,
   * likewise for B, and C(i, j) at {@code c[cOffset + i * n + j]}. Sizes are positive.
   *
   * <p>A product of a few rows of A by a transposed B, long enough for vector dot products, goes to
   * {@link FewRowsGemm}, which does not pack B.
   */
  static void multiply(
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
    if (!transA && transB && m <= FewRowsGemm.MAX_ROWS && k >= FewRowsGemm.MIN_DEPTH) {
      FewRowsGemm.multiply(m, n, k, a, aOffset, b, bOffset, c, cOffset, accumulate);
      return;
    }
    PanelSource panels = new StridedPanels(b, bOffset, transB ? 1 : n, transB ? k : 1);
    multiply(
        m, n, k, a, aOffset, transA ? 1 : k, transA ? m : 1, panels, c, cOffset, n, accumulate);
  }

  /**
   * Computes C = A B, or C += A B when {@code accumulate} is true, for an m x k matrix A read at
   * {@code a[aOffset + i * aRowStride + p * aDepthStride]}, a k x n matrix B that {@code b} packs,
   * and an m x n matrix C stored at {@code c[cOffset + i * ldc + j]}. Sizes are positive, and C
   * must not overlap A or the storage behind B.
   */
  static void multiply(
      int m,
      int n,
      int k,
      float[] a,
      int aOffset,
      int aRowStride,
      int aDepthStride,
      PanelSource b,
      float[] c,
      int cOffset,
      int ldc,
      boolean accumulate) {
    Operands ops =
        new Operands(a, aOffset, aRowStride, aDepthStride, b, c, cOffset, ldc, k, accumulate);
    boolean splitColumns = n >= m;
    int tile = splitColumns ? NR : MR;
    int tiles = Math.ceilDiv(splitColumns ? n : m, tile);
    CpuParallel.forEachChunk(
        tiles,
        (long) m * n * k,
        PARALLEL_MIN_WORK,
        (chunk, first, end) -> {
          if (splitColumns) {
            multiplyPart(ops, 0, m, first * NR, Math.min(n, end * NR));
          } else {
            multiplyPart(ops, first * MR, Math.min(m, end * MR), 0, n);
          }
        });
  }

  /** Operands of one product, as the general {@code multiply} takes them. */
  private record Operands(
      float[] a,
      int aOffset,
      int aRowStride,
      int aDepthStride,
      PanelSource b,
      float[] c,
      int cOffset,
      int ldc,
      int k,
      boolean accumulate) {}

  /**
   * Computes the rows [i0, i1) and columns [j0, j1) of C serially, with packing buffers from this
   * thread's {@link Workspace}.
   */
  private static void multiplyPart(Operands ops, int i0, int i1, int j0, int j1) {
    int k = ops.k();
    int depth = Math.min(k, DEPTH_BLOCK);
    float[] packedA = Workspace.floats(Workspace.Slot.GEMM_A, ROW_BLOCK * depth);
    float[] packedB =
        Workspace.floats(
            Workspace.Slot.GEMM_B, depth * Math.min(COLUMN_BLOCK, Math.ceilDiv(j1 - j0, NR) * NR));
    float[] tile = Workspace.floats(Workspace.Slot.GEMM_TILE, MR * NR);
    for (int jc = j0; jc < j1; jc += COLUMN_BLOCK) {
      int nc = Math.min(COLUMN_BLOCK, j1 - jc);
      for (int pc = 0; pc < k; pc += DEPTH_BLOCK) {
        int kc = Math.min(DEPTH_BLOCK, k - pc);
        // The first depth block overwrites C unless the caller accumulates, and every later block
        // adds its partial product to what the earlier blocks stored.
        boolean add = ops.accumulate() || pc > 0;
        ops.b().pack(pc, kc, jc, nc, packedB);
        for (int ic = i0; ic < i1; ic += ROW_BLOCK) {
          int mc = Math.min(ROW_BLOCK, i1 - ic);
          packA(ops, ic, mc, pc, kc, packedA);
          for (int jr = 0; jr < nc; jr += NR) {
            for (int ir = 0; ir < mc; ir += MR) {
              int rows = Math.min(MR, mc - ir);
              int cols = Math.min(NR, nc - jr);
              int cStart = ops.cOffset() + (ic + ir) * ops.ldc() + jc + jr;
              microKernel(
                  kc, packedA, ir * kc, packedB, jr * kc, ops.c(), cStart, ops.ldc(), rows, cols,
                  add, tile);
            }
          }
        }
      }
    }
  }

  /**
   * Packs rows [i0, i0 + mc) and depths [p0, p0 + kc) of A into panels of MR rows: panel r holds,
   * for each depth p, the MR values A(i0 + r * MR + 0..MR-1, p), zero past the last row.
   */
  private static void packA(Operands ops, int i0, int mc, int p0, int kc, float[] packed) {
    float[] a = ops.a();
    int rowStride = ops.aRowStride();
    int depthStride = ops.aDepthStride();
    for (int r = 0; r < mc; r += MR) {
      int panel = r * kc;
      int rows = Math.min(MR, mc - r);
      for (int row = 0; row < MR; row++) {
        if (row >= rows) {
          for (int p = 0; p < kc; p++) {
            packed[panel + p * MR + row] = 0f;
          }
          continue;
        }
        int source = ops.aOffset() + (i0 + r + row) * rowStride + p0 * depthStride;
        for (int p = 0; p < kc; p++) {
          packed[panel + p * MR + row] = a[source + p * depthStride];
        }
      }
    }
  }

  /**
   * Multiplies an MR-row A panel by an NR-column B panel over kc depth steps, then adds the tile to
   * C or overwrites C with it. Only the top-left rows x cols of the tile are stored; {@code tile}
   * is scratch space for a tile that does not fit whole.
   */
  private static void microKernel(
      int kc,
      float[] packedA,
      int aStart,
      float[] packedB,
      int bStart,
      float[] c,
      int cStart,
      int ldc,
      int rows,
      int cols,
      boolean add,
      float[] tile) {
    FloatVector c00 = FloatVector.zero(SPECIES);
    FloatVector c01 = c00;
    FloatVector c10 = c00;
    FloatVector c11 = c00;
    FloatVector c20 = c00;
    FloatVector c21 = c00;
    FloatVector c30 = c00;
    FloatVector c31 = c00;
    FloatVector c40 = c00;
    FloatVector c41 = c00;
    FloatVector c50 = c00;
    FloatVector c51 = c00;
    int ai = aStart;
    int bi = bStart;
    for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
      FloatVector b0 = FloatVector.fromArray(SPECIES, packedB, bi);
      FloatVector b1 = FloatVector.fromArray(SPECIES, packedB, bi + LANES);
      FloatVector a0 = FloatVector.broadcast(SPECIES, packedA[ai]);
      c00 = b0.fma(a0, c00);
      c01 = b1.fma(a0, c01);
      FloatVector a1 = FloatVector.broadcast(SPECIES, packedA[ai + 1]);
      c10 = b0.fma(a1, c10);
      c11 = b1.fma(a1, c11);
      FloatVector a2 = FloatVector.broadcast(SPECIES, packedA[ai + 2]);
      c20 = b0.fma(a2, c20);
      c21 = b1.fma(a2, c21);
      FloatVector a3 = FloatVector.broadcast(SPECIES, packedA[ai + 3]);
      c30 = b0.fma(a3, c30);
      c31 = b1.fma(a3, c31);
      FloatVector a4 = FloatVector.broadcast(SPECIES, packedA[ai + 4]);
      c40 = b0.fma(a4, c40);
      c41 = b1.fma(a4, c41);
      FloatVector a5 = FloatVector.broadcast(SPECIES, packedA[ai + 5]);
      c50 = b0.fma(a5, c50);
      c51 = b1.fma(a5, c51);
    }

    if (rows == MR && cols == NR) {
      // The registers are added and stored here by name, not in a helper method, because C2 boxes
      // a vector argument into a heap object whenever it does not inline the call. Whether it
      // inlines even a small helper depends on compile order: C2 skips a callee that it has already
      // compiled on its own into more than InlineSmallCode bytes. Each row is loaded, added and
      // stored before the next one, which was about 12% faster than all loads first at depth 16.
      if (add) {
        c00 = c00.add(FloatVector.fromArray(SPECIES, c, cStart));
        c01 = c01.add(FloatVector.fromArray(SPECIES, c, cStart + LANES));
      }
      c00.intoArray(c, cStart);
      c01.intoArray(c, cStart + LANES);
      if (add) {
        c10 = c10.add(FloatVector.fromArray(SPECIES, c, cStart + ldc));
        c11 = c11.add(FloatVector.fromArray(SPECIES, c, cStart + ldc + LANES));
      }
      c10.intoArray(c, cStart + ldc);
      c11.intoArray(c, cStart + ldc + LANES);
      if (add) {
        c20 = c20.add(FloatVector.fromArray(SPECIES, c, cStart + 2 * ldc));
        c21 = c21.add(FloatVector.fromArray(SPECIES, c, cStart + 2 * ldc + LANES));
      }
      c20.intoArray(c, cStart + 2 * ldc);
      c21.intoArray(c, cStart + 2 * ldc + LANES);
      if (add) {
        c30 = c30.add(FloatVector.fromArray(SPECIES, c, cStart + 3 * ldc));
        c31 = c31.add(FloatVector.fromArray(SPECIES, c, cStart + 3 * ldc + LANES));
      }
      c30.intoArray(c, cStart + 3 * ldc);
      c31.intoArray(c, cStart + 3 * ldc + LANES);
      if (add) {
        c40 = c40.add(FloatVector.fromArray(SPECIES, c, cStart + 4 * ldc));
        c41 = c41.add(FloatVector.fromArray(SPECIES, c, cStart + 4 * ldc + LANES));
      }
      c40.intoArray(c, cStart + 4 * ldc);
      c41.intoArray(c, cStart + 4 * ldc + LANES);
      if (add) {
        c50 = c50.add(FloatVector.fromArray(SPECIES, c, cStart + 5 * ldc));
        c51 = c51.add(FloatVector.fromArray(SPECIES, c, cStart + 5 * ldc + LANES));
      }
      c50.intoArray(c, cStart + 5 * ldc);
      c51.intoArray(c, cStart + 5 * ldc + LANES);
      return;
    }
    // Edge tile: spill the registers, then store the part that lies inside C. Each register is
    // stored by name, because putting them in an array would make C2 allocate them as objects.
    c00.intoArray(tile, 0);
    c01.intoArray(tile, LANES);
    c10.intoArray(tile, NR);
    c11.intoArray(tile, NR + LANES);
    c20.intoArray(tile, 2 * NR);
    c21.intoArray(tile, 2 * NR + LANES);
    c30.intoArray(tile, 3 * NR);
    c31.intoArray(tile, 3 * NR + LANES);
    c40.intoArray(tile, 4 * NR);
    c41.intoArray(tile, 4 * NR + LANES);
    c50.intoArray(tile, 5 * NR);
    c51.intoArray(tile, 5 * NR + LANES);
    for (int r = 0; r < rows; r++) {
      int row = cStart + r * ldc;
      for (int col = 0; col < cols; col++) {
        float value = tile[r * NR + col];
        c[row + col] = add ? c[row + col] + value : value;
      }
    }
  }
}
