package dev.kiln.core.backend.cpu;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * {@link PanelSource}s that read the column matrix of a float32 convolution straight from the
 * image, so that no column matrix is stored: the implicit-GEMM ("blocked direct") convolution.
 *
 * <p>The column matrix of one image is [taps, positions], with tap (ic, ky, kx) at row (ic *
 * kernelHeight + ky) * kernelWidth + kx and output position (oy, ox) at column oy * outWidth + ox.
 * Entry (tap, position) is the input pixel x[ic, oy * strideHeight - padHeight + ky *
 * dilationHeight, ox * strideWidth - padWidth + kx * dilationWidth], or zero in the padding; see
 * {@link Conv2dIm2col#im2col}.
 *
 * <p>Both packers first gather the part of one column-matrix row that a depth or column block needs
 * into a short per-thread buffer ({@link ImageOperand#gatherRow}), by one copy per output row, and
 * then move it into the panels. That costs about what im2col and the packing of a stored column
 * matrix cost together, but the buffer stays in the L1 cache, while a stored column matrix of a
 * large layer is written to and read back from memory.
 */
final class ConvPanels {

  private static final int NR = VectorGemm.NR;

  private static final int LANES = VectorGemm.LANES;

  private ConvPanels() {}

  /** The column matrix as B of the forward product weight x col: B(tap, position). */
  static final class Forward extends ImageOperand {

    Forward(float[] image, int imageOffset, Conv2dGeometry g) {
      super(image, imageOffset, g);
    }

    /** Gathers positions [j0, j0 + nc) of each tap, then moves NR of them per panel. */
    @Override
    public void pack(int p0, int kc, int j0, int nc, float[] packed) {
      int width = Math.ceilDiv(nc, NR) * NR;
      float[] row = Workspace.floats(Workspace.Slot.PANEL_ROW, width);
      Arrays.fill(row, nc, width, 0f);
      for (int p = 0; p < kc; p++) {
        gatherRow(p0 + p, j0, nc, row);
        int target = p * NR;
        for (int s = 0; s < nc; s += NR, target += kc * NR) {
          FloatVector.fromArray(VectorGemm.SPECIES, row, s).intoArray(packed, target);
          FloatVector.fromArray(VectorGemm.SPECIES, row, s + LANES)
              .intoArray(packed, target + LANES);
        }
      }
    }
  }

  /**
   * The transposed column matrix as B of the weight-gradient product gradOut x col^T: B(position,
   * tap).
   */
  static final class WeightGradient extends ImageOperand {

    WeightGradient(float[] image, int imageOffset, Conv2dGeometry g) {
      super(image, imageOffset, g);
    }

    /** Gathers positions [p0, p0 + kc) of each tap, then writes them down one panel column. */
    @Override
    public void pack(int p0, int kc, int j0, int nc, float[] packed) {
      float[] row = Workspace.floats(Workspace.Slot.PANEL_ROW, kc);
      for (int s = 0; s < nc; s += NR) {
        int panel = s * kc;
        int cols = Math.min(NR, nc - s);
        for (int col = 0; col < NR; col++) {
          if (col < cols) {
            gatherRow(j0 + s + col, p0, kc, row);
            for (int p = 0; p < kc; p++) {
              packed[panel + p * NR + col] = row[p];
            }
          } else {
            for (int p = 0; p < kc; p++) {
              packed[panel + p * NR + col] = 0f;
            }
          }
        }
      }
    }
  }

  /**
   * An image and the geometry of its convolution. The sizes are copied into fields because {@link
   * Conv2dGeometry#outWidth()} divides on every call, which the packing loops cannot afford.
   */
  private abstract static class ImageOperand implements PanelSource {
    final float[] image;
    final int imageOffset;
    final int inHeight;
    final int inWidth;
    final int outWidth;
    final int kernelHeight;
    final int kernelWidth;
    final int strideHeight;
    final int strideWidth;
    final int padHeight;
    final int padWidth;
    final int dilationHeight;
    final int dilationWidth;

    ImageOperand(float[] image, int imageOffset, Conv2dGeometry g) {
      this.image = image;
      this.imageOffset = imageOffset;
      this.inHeight = g.inHeight();
      this.inWidth = g.inWidth();
      this.outWidth = g.outWidth();
      this.kernelHeight = g.kernelHeight();
      this.kernelWidth = g.kernelWidth();
      this.strideHeight = g.strideHeight();
      this.strideWidth = g.strideWidth();
      this.padHeight = g.padHeight();
      this.padWidth = g.padWidth();
      this.dilationHeight = g.dilationHeight();
      this.dilationWidth = g.dilationWidth();
    }

    /**
     * Writes column-matrix entries (tap, q0 .. q0 + count - 1) to {@code row[0..count)}: one run of
     * input pixels per output row, with zeros where the tap falls in the padding.
     */
    final void gatherRow(int tap, int q0, int count, float[] row) {
      int kernelArea = kernelHeight * kernelWidth;
      int ic = tap / kernelArea;
      int ky = tap % kernelArea / kernelWidth;
      int kx = tap % kernelWidth;

      // Output column ox reads input column ox * strideWidth + shift.
      int shift = kx * dilationWidth - padWidth;
      int first = Conv2dIm2col.firstInside(shift, strideWidth, outWidth);
      int end = Conv2dIm2col.endInside(shift, strideWidth, inWidth, outWidth);
      int rowShift = ky * dilationHeight - padHeight;
      int channel = imageOffset + ic * inHeight * inWidth + shift;

      int oy = q0 / outWidth;
      int ox = q0 % outWidth;
      int t = 0;
      while (t < count) {
        int run = Math.min(count - t, outWidth - ox);
        int iy = oy * strideHeight + rowShift;
        if (iy < 0 || iy >= inHeight) {
          Arrays.fill(row, t, t + run, 0f);
        } else {
          // Output columns [lo, hi) of this run read inside the input row.
          int lo = Math.clamp(first, ox, ox + run);
          int hi = Math.clamp(end, lo, ox + run);
          int source = channel + iy * inWidth;
          // The run starts at slot t with output column ox, so output column x goes to slot
          // from + x. source includes shift and may point left of the input row, but only output
          // columns [lo, hi) read through it.
          int from = t - ox;
          Arrays.fill(row, t, from + lo, 0f);
          if (strideWidth == 1) {
            System.arraycopy(image, source + lo, row, from + lo, hi - lo);
          } else {
            for (int x = lo; x < hi; x++) {
              row[from + x] = image[source + x * strideWidth];
            }
          }
          Arrays.fill(row, from + hi, t + run, 0f);
        }
        t += run;
        ox = 0;
        oy++;
      }
    }
  }
}
