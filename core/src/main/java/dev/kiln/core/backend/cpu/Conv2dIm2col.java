package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;
import java.util.Arrays;

/**
 * The im2col convolution of one image: copy the input into its column matrix, then run one {@link
 * Gemm} product. It works for float32 and float64 and is the reference that the implicit-GEMM
 * method of {@link Conv2dImplicit} is tested against.
 *
 * <p>The column matrix of one image is [inChannels * kernelHeight * kernelWidth, outHeight *
 * outWidth]: row (ic, ky, kx) contains the input pixels that kernel tap meets at each output
 * position, with zeros where the tap falls in the padding. It comes from the calling thread's
 * {@link Workspace}. A 1x1 kernel with stride 1 and no padding has the image itself as its column
 * matrix, so no copy is made then.
 */
final class Conv2dIm2col {

  private Conv2dIm2col() {}

  /** Computes out[b] (outChannels x positions) = weight (outChannels x taps) * col(x[b]). */
  static void forwardImage(Storage x, int b, Storage weight, Conv2dGeometry g, Storage out) {
    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    Storage source = x;
    int sourceOffset = imageOffset;
    if (!isPointwise(g)) {
      source = columns(x, columnMatrixSize(taps, positions));
      sourceOffset = 0;
      im2col(x, imageOffset, g, source, 0, positions);
    }
    Gemm.gemm(
        false,
        false,
        g.outChannels(),
        positions,
        taps,
        weight,
        0,
        source,
        sourceOffset,
        out,
        b * g.outChannels() * positions,
        false);
  }

  /** Computes gradInput[b] = col2im(weight^T (taps x outChannels) * gradOut[b]). */
  static void backwardDataImage(
      Storage gradOut, int b, Storage weight, Conv2dGeometry g, Storage gradInput) {
    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    Storage target = gradInput;
    int targetOffset = imageOffset;
    if (!isPointwise(g)) {
      target = columns(gradOut, columnMatrixSize(taps, positions));
      targetOffset = 0;
    }
    Gemm.gemm(
        true,
        false,
        taps,
        positions,
        g.outChannels(),
        weight,
        0,
        gradOut,
        b * g.outChannels() * positions,
        target,
        targetOffset,
        false);
    if (target != gradInput) {
      col2im(target, 0, positions, g, gradInput, imageOffset);
    }
  }

  /**
   * Computes gradOut[b] (outChannels x positions) * col(x[b])^T and stores it in, or adds it to
   * when {@code accumulate} is set, the [outChannels, taps] matrix at {@code gradWeightOffset}.
   */
  static void backwardWeightImage(
      Storage gradOut,
      Storage x,
      int b,
      Conv2dGeometry g,
      Storage gradWeight,
      int gradWeightOffset,
      boolean accumulate) {
    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageOffset = b * g.inChannels() * g.inHeight() * g.inWidth();
    Storage source = x;
    int sourceOffset = imageOffset;
    if (!isPointwise(g)) {
      source = columns(x, columnMatrixSize(taps, positions));
      sourceOffset = 0;
      im2col(x, imageOffset, g, source, 0, positions);
    }
    Gemm.gemm(
        false,
        true,
        g.outChannels(),
        taps,
        positions,
        gradOut,
        b * g.outChannels() * positions,
        source,
        sourceOffset,
        gradWeight,
        gradWeightOffset,
        accumulate);
  }

  /**
   * Returns rows * columns, the element count of a column matrix with {@code rows} taps and {@code
   * columns} output positions.
   *
   * @throws IllegalArgumentException if the matrix has more elements than a Java array can hold
   */
  static int columnMatrixSize(int rows, int columns) {
    long size = (long) rows * columns;
    if (size > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "conv2d column matrix of "
              + rows
              + " taps x "
              + columns
              + " output positions has "
              + size
              + " elements, more than a Java array can hold ("
              + Integer.MAX_VALUE
              + "): use a smaller input image, fewer input channels or a smaller kernel, or"
              + " float32 with the "
              + VectorSupport.MODULE
              + " module, whose implicit-GEMM method stores no column matrix");
    }
    return (int) size;
  }

  /** Returns this thread's column buffer with room for {@code size} elements of that dtype. */
  private static Storage columns(Storage like, int size) {
    if (like instanceof Storage.F32) {
      return Storage.wrap(Workspace.floats(Workspace.Slot.CONV_COLUMNS, size));
    }
    return Storage.wrap(Workspace.doubles(Workspace.Slot.CONV_COLUMNS, size));
  }

  /**
   * Writes the column matrix of the image [inChannels, inHeight, inWidth] that starts at {@code
   * imageOffset} in {@code image} into {@code col}: entry (row, position) goes to {@code
   * col[colOffset + row * rowStride + position]}. A row stride of outHeight * outWidth stores one
   * image's matrix densely, and a wider one places it as a column block of a batched matrix.
   * Ignores {@code g.batch()} and {@code g.outChannels()}. The caller checks the sizes.
   */
  static void im2col(
      Storage image, int imageOffset, Conv2dGeometry g, Storage col, int colOffset, int rowStride) {
    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int ic = 0; ic < g.inChannels(); ic++) {
      for (int ky = 0; ky < g.kernelHeight(); ky++) {
        for (int kx = 0; kx < g.kernelWidth(); kx++) {
          int row = (ic * g.kernelHeight() + ky) * g.kernelWidth() + kx;
          // Output pixel ox reads input pixel ix = ox * strideWidth + ixShift, and [first, end)
          // are the ox whose ix lies inside the row: conv.cu's test of each entry, hoisted out of
          // the loop over ox.
          int ixShift = kx * g.dilationWidth() - g.padWidth();
          int first = firstInside(ixShift, g.strideWidth(), outWidth);
          int end = endInside(ixShift, g.strideWidth(), g.inWidth(), outWidth);
          for (int oy = 0; oy < outHeight; oy++) {
            int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
            int colStart = colOffset + row * rowStride + oy * outWidth;
            if (iy < 0 || iy >= g.inHeight()) {
              Gemm.fillZero(col, colStart, outWidth);
              continue;
            }
            // The index that ox = 0 would read. It lies left of the row where padding makes
            // ixShift negative, but only [first, end) is read.
            int imageRow = imageOffset + (ic * g.inHeight() + iy) * g.inWidth() + ixShift;
            copyRow(image, imageRow, col, colStart, g.strideWidth(), outWidth, first, end);
          }
        }
      }
    }
  }

  /**
   * Overwrites the image at {@code imageOffset} in {@code image} with the adjoint of {@link
   * #im2col}: each pixel becomes the sum of the column entries that im2col would copy from it.
   * Entries that fall in the padding are dropped. The column matrix is read with the layout that
   * {@link #im2col} writes for the same {@code colOffset} and {@code rowStride}. The caller checks
   * the sizes.
   *
   * <p>This loop scatters: it walks the column matrix and adds each entry to its pixel. One thread
   * owns the whole image, so no two writes race. {@code kiln_conv_col2im} in {@code conv.cu}
   * gathers instead, one GPU thread per pixel, so that no two threads write the same pixel and no
   * atomics are needed.
   */
  static void col2im(
      Storage col, int colOffset, int rowStride, Conv2dGeometry g, Storage image, int imageOffset) {
    Gemm.fillZero(image, imageOffset, g.inChannels() * g.inHeight() * g.inWidth());

    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int ic = 0; ic < g.inChannels(); ic++) {
      for (int ky = 0; ky < g.kernelHeight(); ky++) {
        for (int kx = 0; kx < g.kernelWidth(); kx++) {
          int row = (ic * g.kernelHeight() + ky) * g.kernelWidth() + kx;
          int ixShift = kx * g.dilationWidth() - g.padWidth();
          int first = firstInside(ixShift, g.strideWidth(), outWidth);
          int end = endInside(ixShift, g.strideWidth(), g.inWidth(), outWidth);
          for (int oy = 0; oy < outHeight; oy++) {
            int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
            if (iy < 0 || iy >= g.inHeight()) {
              continue;
            }
            int colStart = colOffset + row * rowStride + oy * outWidth;
            int imageRow = imageOffset + (ic * g.inHeight() + iy) * g.inWidth() + ixShift;
            addRow(col, colStart, image, imageRow, g.strideWidth(), first, end);
          }
        }
      }
    }
  }

  /** Tests for a 1x1 kernel with stride 1 and no padding, whose column matrix is the image. */
  static boolean isPointwise(Conv2dGeometry g) {
    return g.kernelHeight() == 1
        && g.kernelWidth() == 1
        && g.strideHeight() == 1
        && g.strideWidth() == 1
        && g.padHeight() == 0
        && g.padWidth() == 0;
  }

  /** Returns the number of taps, inChannels * kernelHeight * kernelWidth. */
  static int columnRows(Conv2dGeometry g) {
    return g.inChannels() * g.kernelHeight() * g.kernelWidth();
  }

  /** Returns the first output column whose input column ox * stride + shift is >= 0. */
  static int firstInside(int shift, int stride, int outWidth) {
    int first = shift >= 0 ? 0 : Math.floorDiv(-shift + stride - 1, stride);
    return Math.min(first, outWidth);
  }

  /** Returns one past the last output column whose input column is < inWidth. */
  static int endInside(int shift, int stride, int inWidth, int outWidth) {
    int last = Math.floorDiv(inWidth - 1 - shift, stride);
    return Math.max(0, Math.min(outWidth, last + 1));
  }

  /** col[colStart + ox] = image[imageRow + ox * stride] for ox in [first, end), else 0. */
  private static void copyRow(
      Storage image,
      int imageRow,
      Storage col,
      int colStart,
      int stride,
      int outWidth,
      int first,
      int end) {
    if (image instanceof Storage.F32) {
      float[] src = image.floats();
      float[] dst = col.floats();
      Arrays.fill(dst, colStart, colStart + first, 0f);
      if (stride == 1 && end > first) {
        // A stride-1 row is one contiguous run, which arraycopy moves with vector loads.
        System.arraycopy(src, imageRow + first, dst, colStart + first, end - first);
      } else {
        for (int ox = first; ox < end; ox++) {
          dst[colStart + ox] = src[imageRow + ox * stride];
        }
      }
      Arrays.fill(dst, colStart + Math.max(first, end), colStart + outWidth, 0f);
    } else {
      double[] src = image.doubles();
      double[] dst = col.doubles();
      Arrays.fill(dst, colStart, colStart + first, 0.0);
      for (int ox = first; ox < end; ox++) {
        dst[colStart + ox] = src[imageRow + ox * stride];
      }
      Arrays.fill(dst, colStart + Math.max(first, end), colStart + outWidth, 0.0);
    }
  }

  /** image[imageRow + ox * stride] += col[colStart + ox] for ox in [first, end). */
  private static void addRow(
      Storage col, int colStart, Storage image, int imageRow, int stride, int first, int end) {
    if (image instanceof Storage.F32) {
      float[] src = col.floats();
      float[] dst = image.floats();
      for (int ox = first; ox < end; ox++) {
        dst[imageRow + ox * stride] += src[colStart + ox];
      }
    } else {
      double[] src = col.doubles();
      double[] dst = image.doubles();
      for (int ox = first; ox < end; ox++) {
        dst[imageRow + ox * stride] += src[colStart + ox];
      }
    }
  }
}
