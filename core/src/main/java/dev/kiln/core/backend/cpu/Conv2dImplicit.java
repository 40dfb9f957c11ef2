package dev.kiln.core.backend.cpu;

import java.util.Arrays;

/**
 * The implicit-GEMM ("blocked direct") convolution of one float32 image: the same products as
 * {@link Conv2dIm2col}, but {@link VectorGemm} packs its B panels (the blocks of B that it copies
 * into a compact layout, see its class comment) straight from the image through {@link ConvPanels},
 * so the column matrix is never stored. Both use the Vector API, so {@link Conv2dKernels} picks
 * this method only when {@link VectorSupport#available()}.
 *
 * <p>That saves writing the column matrix and reading it back, up to 36 MB per image for a 5x5
 * kernel over 32 channels at 106x106 outputs. In the backward-data product the column matrix is the
 * result, not an operand. So that product is computed one block of output positions at a time into
 * a small buffer, which is added into the input gradient before the next block.
 */
final class Conv2dImplicit {

  /**
   * Target size in floats of one column block of the backward-data product (1 MiB), so that the
   * block is still in the cache when it is added into the input gradient.
   *
   * <p>NOTE: chosen by cache size, not tuned: no other block size was measured.
   */
  static final int DATA_BLOCK_FLOATS = 1 << 18;

  private Conv2dImplicit() {}

  /** Computes out[b] (outChannels x positions) = weight (outChannels x taps) * col(x[b]). */
  static void forwardImage(float[] x, int b, float[] weight, Conv2dGeometry g, float[] out) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    VectorGemm.multiply(
        g.outChannels(),
        positions,
        taps,
        weight,
        0,
        taps,
        1,
        new ConvPanels.Forward(x, imageOffset, g),
        out,
        b * g.outChannels() * positions,
        positions,
        false);
  }

  /**
   * Computes gradOut[b] (outChannels x positions) * col(x[b])^T and stores it in, or adds it to
   * when {@code accumulate} is set, the [outChannels, taps] matrix at {@code gradWeightOffset}.
   */
  static void backwardWeightImage(
      float[] gradOut,
      float[] x,
      int b,
      Conv2dGeometry g,
      float[] gradWeight,
      int gradWeightOffset,
      boolean accumulate) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    VectorGemm.multiply(
        g.outChannels(),
        taps,
        positions,
        gradOut,
        b * g.outChannels() * positions,
        positions,
        1,
        new ConvPanels.WeightGradient(x, imageOffset, g),
        gradWeight,
        gradWeightOffset,
        taps,
        accumulate);
  }

  /**
   * Computes gradInput[b] = col2im(weight^T (taps x outChannels) * gradOut[b]) one block of output
   * positions at a time. Each block of the column matrix goes to this thread's {@link Workspace}
   * and is added into gradInput[b] before the next block is computed. The product runs over the
   * whole depth (outChannels) before a block is added, so it handles any number of depth blocks.
   */
  static void backwardDataImage(
      float[] gradOut, int b, float[] weight, Conv2dGeometry g, float[] gradInput) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    int gradOutOffset = b * g.outChannels() * positions;
    Arrays.fill(
        gradInput, imageOffset, imageOffset + g.inChannels() * g.inHeight() * g.inWidth(), 0f);

    int block = blockColumns(taps, positions);
    float[] col = Workspace.floats(Workspace.Slot.CONV_COLUMNS, taps * block);
    for (int j0 = 0; j0 < positions; j0 += block) {
      int nc = Math.min(block, positions - j0);
      // col (taps x nc) = weight^T * gradOut[b][:, j0 .. j0 + nc); A(tap, oc) = weight[oc, tap].
      VectorGemm.multiply(
          taps,
          nc,
          g.outChannels(),
          weight,
          0,
          1,
          taps,
          new StridedPanels(gradOut, gradOutOffset + j0, positions, 1),
          col,
          0,
          nc,
          false);
      addColumns(col, nc, j0, g, gradInput, imageOffset);
    }
  }

  /**
   * Returns the number of output positions per backward-data block: a multiple of {@link
   * VectorGemm#NR} that keeps the block near {@link #DATA_BLOCK_FLOATS}, or all positions.
   */
  static int blockColumns(int taps, int positions) {
    int columns = Math.max(VectorGemm.NR, DATA_BLOCK_FLOATS / taps / VectorGemm.NR * VectorGemm.NR);
    return Math.min(columns, positions);
  }

  /**
   * Adds the column-matrix block {@code col} (taps x nc, row-major) of output positions [j0, j0 +
   * nc) into the image at {@code imageOffset}: the adjoint of im2col restricted to that block. It
   * walks each row as {@code ConvPanels.ImageOperand.gatherRow} does, one run per output row, but
   * adds each entry into the pixel that gatherRow would copy it from.
   */
  private static void addColumns(
      float[] col, int nc, int j0, Conv2dGeometry g, float[] image, int imageOffset) {
    int outWidth = g.outWidth();
    int stride = g.strideWidth();
    int row = 0;
    for (int ic = 0; ic < g.inChannels(); ic++) {
      int channel = imageOffset + ic * g.inHeight() * g.inWidth();
      for (int ky = 0; ky < g.kernelHeight(); ky++) {
        for (int kx = 0; kx < g.kernelWidth(); kx++, row++) {
          int shift = kx * g.dilationWidth() - g.padWidth();
          int first = Conv2dIm2col.firstInside(shift, stride, outWidth);
          int end = Conv2dIm2col.endInside(shift, stride, g.inWidth(), outWidth);
          int oy = j0 / outWidth;
          int ox = j0 % outWidth;
          int source = row * nc;
          int left = nc;
          while (left > 0) {
            int run = Math.min(left, outWidth - ox);
            int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
            if (iy >= 0 && iy < g.inHeight()) {
              int lo = Math.clamp(first, ox, ox + run);
              int hi = Math.clamp(end, lo, ox + run);
              int target = channel + iy * g.inWidth() + shift;
              int from = source - ox;
              if (stride == 1) {
                // A separate unit-stride loop, so that C2 can vectorize it.
                for (int x = lo; x < hi; x++) {
                  image[target + x] += col[from + x];
                }
              } else {
                for (int x = lo; x < hi; x++) {
                  image[target + x * stride] += col[from + x];
                }
              }
            }
            source += run;
            left -= run;
            ox = 0;
            oy++;
          }
        }
      }
    }
  }
}
