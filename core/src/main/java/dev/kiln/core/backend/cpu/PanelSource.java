package dev.kiln.core.backend.cpu;

/**
 * The B operand of a {@link VectorGemm} product, a k x n matrix that packs its own panels. It lets
 * a caller supply B without storing it as an array, as the implicit-GEMM convolution does.
 *
 * <p>Implementations must be safe to call from several threads at once, because a parallel product
 * packs different column ranges on different threads.
 */
interface PanelSource {

  /**
   * Packs depths [p0, p0 + kc) and columns [j0, j0 + nc) of B into {@code packed}, in panels of
   * {@link VectorGemm#NR} columns. The panel of columns j0 + s .. j0 + s + NR - 1 (s a multiple of
   * NR) starts at {@code packed[s * kc]} and holds, for each depth p in order, the NR values B(p0 +
   * p, j0 + s + 0..NR-1). Values past column j0 + nc - 1 are zero. The caller guarantees that the
   * ranges lie inside B and that {@code packed} has room for {@code kc * ceil(nc / NR) * NR}
   * floats.
   */
  void pack(int p0, int kc, int j0, int nc, float[] packed);
}
