package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * A B operand stored in a float array, with B(p, j) at {@code b[offset + p * depthStride + j *
 * columnStride]}. A row-major B has column stride 1, and a transposed one has depth stride 1.
 */
record StridedPanels(float[] b, int offset, int depthStride, int columnStride)
    implements PanelSource {

  private static final int NR = VectorGemm.NR;

  private static final int LANES = VectorGemm.LANES;

  @Override
  public void pack(int p0, int kc, int j0, int nc, float[] packed) {
    for (int s = 0; s < nc; s += NR) {
      int panel = s * kc;
      int cols = Math.min(NR, nc - s);
      if (columnStride == 1) {
        packRowMajorPanel(p0, kc, j0 + s, cols, packed, panel);
      } else {
        packStridedPanel(p0, kc, j0 + s, cols, packed, panel);
      }
    }
  }

  /**
   * Packs one panel of a B whose rows are contiguous. A whole panel moves with two vector loads and
   * stores per depth step, which avoids the call overhead of a short {@code System.arraycopy}.
   */
  private void packRowMajorPanel(int p0, int kc, int column, int cols, float[] packed, int panel) {
    int source = offset + p0 * depthStride + column;
    int target = panel;
    if (cols == NR) {
      for (int p = 0; p < kc; p++, source += depthStride, target += NR) {
        FloatVector.fromArray(VectorGemm.SPECIES, b, source).intoArray(packed, target);
        FloatVector.fromArray(VectorGemm.SPECIES, b, source + LANES)
            .intoArray(packed, target + LANES);
      }
      return;
    }
    for (int p = 0; p < kc; p++, source += depthStride, target += NR) {
      for (int col = 0; col < cols; col++) {
        packed[target + col] = b[source + col];
      }
      for (int col = cols; col < NR; col++) {
        packed[target + col] = 0f;
      }
    }
  }

  /** Packs one panel by walking each column of B, a contiguous run when B is transposed. */
  private void packStridedPanel(int p0, int kc, int column, int cols, float[] packed, int panel) {
    for (int col = 0; col < NR; col++) {
      if (col >= cols) {
        for (int p = 0; p < kc; p++) {
          packed[panel + p * NR + col] = 0f;
        }
        continue;
      }
      int source = offset + p0 * depthStride + (column + col) * columnStride;
      for (int p = 0; p < kc; p++) {
        packed[panel + p * NR + col] = b[source + p * depthStride];
      }
    }
  }
}
