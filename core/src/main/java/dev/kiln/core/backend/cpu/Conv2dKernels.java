package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;
import java.util.Arrays;

/**
 * 2d convolution (cross-correlation, as in PyTorch) on NCHW storage, by im2col and {@link Gemm} per
 * image.
 *
 * <p>Shapes: input x is [batch, inChannels, inHeight, inWidth], weight is [outChannels, inChannels,
 * kernelHeight, kernelWidth], bias is [outChannels] and the output is [batch, outChannels,
 * outHeight, outWidth], all row-major and of one dtype. Every kernel overwrites its output storage.
 * The column matrix of one image is [inChannels * kernelHeight * kernelWidth, outHeight *
 * outWidth]: row (ic, ky, kx) contains the input pixels that kernel tap meets at each output
 * position, with zeros where the tap falls in the padding.
 */
public final class Conv2dKernels {

  private Conv2dKernels() {}

  /**
   * Computes out[b, oc, oy, ox] = bias[oc] + sum over (ic, ky, kx) of weight[oc, ic, ky, kx] * x[b,
   * ic, oy * strideH - padH + ky * dilationH, ox * strideW - padW + kx * dilationW], with zeros
   * outside the input. {@code bias} may be null for no bias. Overwrites {@code out}.
   */
  public static void forward(
      Storage x, Storage weight, Storage bias, Conv2dGeometry g, Storage out) {
    requireSize("input", x, g.inputSize());
    requireSize("weight", weight, g.weightSize());
    requireSize("output", out, g.outputSize());
    requireSameDtype(x, weight, out);
    if (bias != null) {
      requireSize("bias", bias, g.outChannels());
    }

    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageSize = g.inChannels() * g.inHeight() * g.inWidth();
    int outImageSize = g.outChannels() * positions;
    // Each chunk of images writes only its own images of out, so any split gives the same bits.
    CpuParallel.forEachChunk(
        g.batch(),
        (chunk, firstImage, endImage) -> {
          Storage col = isPointwise(g) ? null : Storage.allocate(x.dtype(), taps * positions);
          for (int b = firstImage; b < endImage; b++) {
            // out[b] (outChannels x positions) = weight (outChannels x taps) * col (taps x
            // positions).
            Storage source = col == null ? x : col;
            int sourceOffset = col == null ? b * imageSize : 0;
            if (col != null) {
              im2col(x, b * imageSize, g, col);
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
                b * outImageSize,
                false);
          }
        });

    if (bias != null) {
      for (int b = 0; b < g.batch(); b++) {
        for (int oc = 0; oc < g.outChannels(); oc++) {
          addConstant(out, (b * g.outChannels() + oc) * positions, positions, bias.get(oc));
        }
      }
    }
  }

  /**
   * Computes the gradient of the loss with respect to the input and overwrites {@code gradInput}
   * [batch, inChannels, inHeight, inWidth] with it.
   *
   * <p>Math: gradX[b] = col2im(weight^T * gradOut[b]), where weight is viewed as [outChannels,
   * taps]; each output gradient flows back through every tap to the input pixel that tap read.
   */
  public static void backwardData(
      Storage gradOut, Storage weight, Conv2dGeometry g, Storage gradInput) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("weight", weight, g.weightSize());
    requireSize("input gradient", gradInput, g.inputSize());
    requireSameDtype(gradOut, weight, gradInput);

    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageSize = g.inChannels() * g.inHeight() * g.inWidth();
    int outImageSize = g.outChannels() * positions;
    // Each chunk of images writes only its own images of gradInput.
    CpuParallel.forEachChunk(
        g.batch(),
        (chunk, firstImage, endImage) -> {
          Storage col = isPointwise(g) ? null : Storage.allocate(gradOut.dtype(), taps * positions);
          for (int b = firstImage; b < endImage; b++) {
            // col (taps x positions) = weight^T (taps x outChannels) * gradOut[b].
            Storage target = col == null ? gradInput : col;
            int targetOffset = col == null ? b * imageSize : 0;
            Gemm.gemm(
                true,
                false,
                taps,
                positions,
                g.outChannels(),
                weight,
                0,
                gradOut,
                b * outImageSize,
                target,
                targetOffset,
                false);
            if (col != null) {
              col2im(col, g, gradInput, b * imageSize);
            }
          }
        });
  }

  /**
   * Computes the gradient of the loss with respect to the weight and overwrites {@code gradWeight}
   * [outChannels, inChannels, kernelHeight, kernelWidth] with it.
   *
   * <p>Math: gradW = sum over b of gradOut[b] * im2col(x[b])^T, with gradOut[b] viewed as
   * [outChannels, positions] and the column matrix as [taps, positions].
   */
  public static void backwardWeight(
      Storage gradOut, Storage x, Conv2dGeometry g, Storage gradWeight) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("input", x, g.inputSize());
    requireSize("weight gradient", gradWeight, g.weightSize());
    requireSameDtype(gradOut, x, gradWeight);

    int taps = columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int imageSize = g.inChannels() * g.inHeight() * g.inWidth();
    int outImageSize = g.outChannels() * positions;
    // Chunk 0 sums its images into gradWeight and every other chunk into a partial sum of its own.
    // The partial sums are then added to gradWeight in chunk order, so the result depends on the
    // thread count but not on thread timing.
    if (g.batch() == 0) {
      fillZero(gradWeight, 0, gradWeight.size());
      return;
    }
    int chunks = CpuParallel.chunkCount(g.batch());
    Storage[] partials = new Storage[chunks];
    partials[0] = gradWeight;
    for (int t = 1; t < chunks; t++) {
      partials[t] = Storage.allocate(gradWeight.dtype(), gradWeight.size());
    }
    CpuParallel.forEachChunk(
        g.batch(),
        (chunk, firstImage, endImage) -> {
          Storage col = isPointwise(g) ? null : Storage.allocate(x.dtype(), taps * positions);
          for (int b = firstImage; b < endImage; b++) {
            Storage source = col == null ? x : col;
            int sourceOffset = col == null ? b * imageSize : 0;
            if (col != null) {
              im2col(x, b * imageSize, g, col);
            }
            Gemm.gemm(
                false,
                true,
                g.outChannels(),
                taps,
                positions,
                gradOut,
                b * outImageSize,
                source,
                sourceOffset,
                partials[chunk],
                0,
                b > firstImage);
          }
        });
    for (int t = 1; t < chunks; t++) {
      addInto(partials[t], gradWeight);
    }
  }

  /** Adds {@code source} elementwise to {@code target} of the same size and dtype. */
  private static void addInto(Storage source, Storage target) {
    if (target instanceof Storage.F32) {
      float[] from = source.floats();
      float[] to = target.floats();
      for (int i = 0; i < to.length; i++) {
        to[i] += from[i];
      }
    } else {
      double[] from = source.doubles();
      double[] to = target.doubles();
      for (int i = 0; i < to.length; i++) {
        to[i] += from[i];
      }
    }
  }

  /**
   * Computes the gradient of the loss with respect to the bias and overwrites {@code gradBias}
   * [outChannels] with it.
   *
   * <p>Math: gradBias[oc] = sum over b, oy, ox of gradOut[b, oc, oy, ox], summed in double.
   */
  public static void backwardBias(Storage gradOut, Conv2dGeometry g, Storage gradBias) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("bias gradient", gradBias, g.outChannels());

    int positions = g.outHeight() * g.outWidth();
    for (int oc = 0; oc < g.outChannels(); oc++) {
      double sum = 0;
      for (int b = 0; b < g.batch(); b++) {
        sum += sumRange(gradOut, (b * g.outChannels() + oc) * positions, positions);
      }
      gradBias.set(oc, sum);
    }
  }

  /**
   * Writes the column matrix of the image [inChannels, inHeight, inWidth] that starts at {@code
   * imageOffset} in {@code image} into {@code col}, from index 0, as [inChannels * kernelHeight *
   * kernelWidth, outHeight * outWidth]. Ignores {@code g.batch()} and {@code g.outChannels()}.
   */
  public static void im2col(Storage image, int imageOffset, Conv2dGeometry g, Storage col) {
    requireImage(image, imageOffset, g);
    requireColumnMatrix(col, g);
    requireSameDtype(image, col, col);

    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int ic = 0; ic < g.inChannels(); ic++) {
      for (int ky = 0; ky < g.kernelHeight(); ky++) {
        for (int kx = 0; kx < g.kernelWidth(); kx++) {
          int row = (ic * g.kernelHeight() + ky) * g.kernelWidth() + kx;
          // Input column of output column ox is ox * strideWidth + columnShift.
          int columnShift = kx * g.dilationWidth() - g.padWidth();
          int first = firstInside(columnShift, g.strideWidth(), outWidth);
          int end = endInside(columnShift, g.strideWidth(), g.inWidth(), outWidth);
          for (int oy = 0; oy < outHeight; oy++) {
            int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
            int colStart = (row * outHeight + oy) * outWidth;
            if (iy < 0 || iy >= g.inHeight()) {
              fillZero(col, colStart, outWidth);
              continue;
            }
            int imageRow = imageOffset + (ic * g.inHeight() + iy) * g.inWidth() + columnShift;
            copyRow(image, imageRow, col, colStart, g.strideWidth(), outWidth, first, end);
          }
        }
      }
    }
  }

  /**
   * Overwrites the image [inChannels, inHeight, inWidth] at {@code imageOffset} in {@code image}
   * with the adjoint of {@link #im2col}: each pixel becomes the sum of the column entries that
   * im2col would copy from it. Entries that fall in the padding are dropped.
   */
  public static void col2im(Storage col, Conv2dGeometry g, Storage image, int imageOffset) {
    requireImage(image, imageOffset, g);
    requireColumnMatrix(col, g);
    requireSameDtype(image, col, col);

    fillZero(image, imageOffset, g.inChannels() * g.inHeight() * g.inWidth());

    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int ic = 0; ic < g.inChannels(); ic++) {
      for (int ky = 0; ky < g.kernelHeight(); ky++) {
        for (int kx = 0; kx < g.kernelWidth(); kx++) {
          int row = (ic * g.kernelHeight() + ky) * g.kernelWidth() + kx;
          int columnShift = kx * g.dilationWidth() - g.padWidth();
          int first = firstInside(columnShift, g.strideWidth(), outWidth);
          int end = endInside(columnShift, g.strideWidth(), g.inWidth(), outWidth);
          for (int oy = 0; oy < outHeight; oy++) {
            int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
            if (iy < 0 || iy >= g.inHeight()) {
              continue;
            }
            int colStart = (row * outHeight + oy) * outWidth;
            int imageRow = imageOffset + (ic * g.inHeight() + iy) * g.inWidth() + columnShift;
            addRow(col, colStart, image, imageRow, g.strideWidth(), first, end);
          }
        }
      }
    }
  }

  /** Tests for a 1x1 kernel with stride 1 and no padding, whose column matrix is the image. */
  private static boolean isPointwise(Conv2dGeometry g) {
    return g.kernelHeight() == 1
        && g.kernelWidth() == 1
        && g.strideHeight() == 1
        && g.strideWidth() == 1
        && g.padHeight() == 0
        && g.padWidth() == 0;
  }

  private static int columnRows(Conv2dGeometry g) {
    return g.inChannels() * g.kernelHeight() * g.kernelWidth();
  }

  /** Returns the first output column whose input column ox * stride + shift is >= 0. */
  private static int firstInside(int shift, int stride, int outWidth) {
    int first = shift >= 0 ? 0 : Math.floorDiv(-shift + stride - 1, stride);
    return Math.min(first, outWidth);
  }

  /** Returns one past the last output column whose input column is < inWidth. */
  private static int endInside(int shift, int stride, int inWidth, int outWidth) {
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

  private static void fillZero(Storage storage, int offset, int length) {
    if (storage instanceof Storage.F32) {
      Arrays.fill(storage.floats(), offset, offset + length, 0f);
    } else {
      Arrays.fill(storage.doubles(), offset, offset + length, 0.0);
    }
  }

  private static void addConstant(Storage storage, int offset, int length, double value) {
    if (storage instanceof Storage.F32) {
      float[] data = storage.floats();
      float v = (float) value;
      for (int i = offset; i < offset + length; i++) {
        data[i] += v;
      }
    } else {
      double[] data = storage.doubles();
      for (int i = offset; i < offset + length; i++) {
        data[i] += value;
      }
    }
  }

  private static double sumRange(Storage storage, int offset, int length) {
    double sum = 0;
    for (int i = offset; i < offset + length; i++) {
      sum += storage.get(i);
    }
    return sum;
  }

  private static void requireSize(String name, Storage storage, int expected) {
    if (storage.size() != expected) {
      throw new IllegalArgumentException(
          "conv2d "
              + name
              + " has "
              + storage.size()
              + " elements but the geometry expects "
              + expected
              + ": check the shapes against the Conv2dGeometry");
    }
  }

  private static void requireImage(Storage image, int offset, Conv2dGeometry g) {
    int imageSize = g.inChannels() * g.inHeight() * g.inWidth();
    if (offset < 0 || (long) offset + imageSize > image.size()) {
      throw new IllegalArgumentException(
          "image of "
              + imageSize
              + " elements at offset "
              + offset
              + " does not fit a storage of "
              + image.size()
              + " elements");
    }
  }

  private static void requireColumnMatrix(Storage col, Conv2dGeometry g) {
    long needed = (long) columnRows(g) * g.outHeight() * g.outWidth();
    if (col.size() < needed) {
      throw new IllegalArgumentException(
          "column matrix needs " + needed + " elements, got a storage of " + col.size());
    }
  }

  private static void requireSameDtype(Storage first, Storage second, Storage third) {
    if (first.dtype() != second.dtype() || first.dtype() != third.dtype()) {
      throw new IllegalArgumentException(
          "conv2d operands must share one dtype, got "
              + first.dtype()
              + ", "
              + second.dtype()
              + " and "
              + third.dtype());
    }
  }
}
