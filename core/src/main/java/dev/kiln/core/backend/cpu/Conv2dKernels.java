package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * 2d convolution (cross-correlation, as in PyTorch) on NCHW storage, one {@link Gemm}-style product
 * per image or per group of images.
 *
 * <p>Shapes: input x is [batch, inChannels, inHeight, inWidth], weight is [outChannels, inChannels,
 * kernelHeight, kernelWidth], bias is [outChannels] and the output is [batch, outChannels,
 * outHeight, outWidth], all row-major and of one dtype. Every kernel overwrites its output storage.
 * With taps = inChannels * kernelHeight * kernelWidth and positions = outHeight * outWidth, the
 * column matrix of one image is [taps, positions]; see {@link Conv2dIm2col}.
 *
 * <p>Three methods compute the products: {@link Conv2dIm2col} stores the column matrix of each
 * image and calls {@link Gemm}, {@link Conv2dImplicit} (float32 only) packs the product's panels
 * (the blocks of a matrix that {@link VectorGemm} copies into a compact layout before it
 * multiplies) straight from the image, and {@link Conv2dBatched} runs one product for a group of
 * images. {@link #IMPLICIT_MIN_COLUMN_SIZE} and {@link Conv2dBatched#MAX_POSITIONS} record the
 * measurements behind the choice.
 *
 * <p>The per-image methods split the images across {@link CpuParallel} chunks, and each chunk
 * writes only its own images, so the outputs do not depend on thread timing. Their weight gradient
 * sums per-chunk partials in chunk order, so it depends on the chunk count only: the thread count,
 * capped by the batch, and 1 when the call comes from a pool worker. The batched method gives the
 * same bits for any thread count; see {@link Conv2dBatched}.
 */
public final class Conv2dKernels {

  /**
   * Size of the column matrix of one image, taps * positions elements, from which float32
   * convolutions use {@link Conv2dImplicit} instead of {@link Conv2dIm2col}. Below it the column
   * matrix takes at most 4 MiB, im2col costs little, and the two methods are within the spread of
   * repeated runs.
   *
   * <p>Measured with a throwaway timing loop on the conv layers of the presets (lenet-20m and
   * lenet-48m at batch 4, default and naimishnet at batch 32, random operands): thread CPU time of
   * one call with {@code kiln.threads=1}, median of 9 after 6 warm-up calls, the two methods
   * interleaved, on a 2-core AMD EPYC with AVX-512 and JDK 25 that other builds shared. Both
   * methods use the {@link Workspace} buffers. Milliseconds per call, im2col / implicit:
   *
   * <pre>
   *   layer          in -> out, kernel, output  column   forward      backwardData  backwardWeight
   *   lenet-20m/0     1 ->  32, 5x5, 220x220    1.2M      8.2 /  7.4    9.9 /  9.0   14.2 / 13.8
   *   lenet-20m/3    32 ->  64, 5x5, 106x106    9.0M     76.6 / 59.1   85.3 / 70.4   99.6 / 76.9
   *   lenet-20m/6    64 -> 128, 3x3, 51x51      1.5M     20.1 / 19.2   21.9 / 20.3   26.3 / 22.6
   *   lenet-20m/9   128 -> 256, 3x3 s2, 12x12   166K      5.8 /  5.8    5.1 /  5.3    5.0 /  4.9
   *   lenet-48m/3    32 ->  32, 3x3, 108x108    3.4M     19.9 / 15.0   22.9 / 16.1   24.9 / 20.6
   *   lenet-48m/6    32 ->  64, 3x3, 52x52      779K      5.9 /  5.8    6.6 /  6.1    8.7 /  7.3
   *   default/0       1 ->  16, 3x3 p1, 96x96    83K      3.4 /  3.3    4.8 /  4.4   11.4 / 11.5
   *   default/4      16 ->  32, 3x3 p1, 48x48   332K     13.0 / 12.6   15.0 / 14.3   18.7 / 19.8
   *   default/8      32 ->  64, 3x3 p1, 24x24   166K     10.8 / 11.1   11.1 / 11.5   13.1 / 13.8
   *   default/12     64 -> 128, 3x3 p1, 12x12    83K     11.4 / 11.4   10.9 / 11.6   10.9 / 11.0
   *   default/16    128 -> 256, 3x3 p1, 6x6      41K     19.1 / 19.1   18.6 / 19.6   10.3 / 10.7
   *   naimishnet/0    1 ->  32, 4x4, 93x93      138K      9.0 /  9.0   10.2 /  9.6   18.7 / 18.8
   *   naimishnet/4   32 ->  64, 3x3, 44x44      558K     32.1 / 32.6   36.3 / 35.3   43.7 / 41.6
   *   naimishnet/8   64 -> 128, 2x2, 21x21      113K     12.3 / 12.5   13.0 / 13.4   14.5 / 14.6
   * </pre>
   *
   * <p>So the implicit method saves 3-14% at 1.2M and 1.5M column elements and 17-30% at 3.4M and
   * 9.0M. At 779K it still saves 2-16%, and from 558K down the two differ by at most 9% either way,
   * about the spread of repeated runs (up to 10% in an earlier run). The limit, 2^20, is a round
   * number between 779K and 1.2M. The 1x1 layers (lenet-48m/9, naimishnet/12) are not listed
   * because their column matrix is the image, which both methods pass to the product without a
   * copy.
   *
   * <p>NOTE: this table was measured before {@link FewRowsGemm} existed. Its im2col backwardWeight
   * column is stale for the layers with at most {@link FewRowsGemm#MAX_ROWS} output channels
   * (lenet-20m/0, lenet-48m/3, default/0, default/4, naimishnet/0), whose im2col weight-gradient
   * product now runs there. The table of {@link #WEIGHT_GRADIENT_MAX_COLUMN_ROWS} was measured
   * after.
   */
  static final long IMPLICIT_MIN_COLUMN_SIZE = 1L << 20;

  /**
   * The maximum number of column-matrix rows (input channels x kernel area) for which the weight
   * gradient of a layer with at most {@link FewRowsGemm#MAX_ROWS} output channels goes through the
   * column matrix, even where {@link #IMPLICIT_MIN_COLUMN_SIZE} picks the implicit method. The
   * product is then one of {@link FewRowsGemm}'s, which reads each row of the column matrix as it
   * is stored. The implicit method instead transposes each gathered row into the packed panels one
   * element at a time, which costs most when few output channels share the panels.
   *
   * <p>Measured with a throwaway timing loop (median of 9, three rounds, 2 threads) on the 2-core
   * AMD EPYC of the table above. Milliseconds per backward weight call, im2col / implicit:
   *
   * <pre>
   *   layer            in -> out, kernel, output   batch  column rows  three rounds
   *   lenet-20m/0       1 ->  32, 5x5, 220x220      10        25       11.3/21.3  13.2/18.2  11.2/19.6
   *   lenet-20m/0       1 ->  32, 5x5, 220x220      32        25       38.4/59.7  38.2/58.3  33.4/63.4
   *   lenet-48m/3      32 ->  32, 3x3, 108x108      10       288       30.2/28.6  30.6/28.4  29.9/25.1
   * </pre>
   *
   * <p>NOTE: the limit of 64 lies between the two measured row counts, 25 and 288, and was not
   * narrowed further.
   */
  static final int WEIGHT_GRADIENT_MAX_COLUMN_ROWS = 64;

  /**
   * Returns the method of the weight gradient: that of {@link #choose}, except where the rule of
   * {@link #WEIGHT_GRADIENT_MAX_COLUMN_ROWS} replaces an automatic {@link Method#IMPLICIT}, which
   * it does only when the column matrix of one image fits a Java array.
   */
  static Method chooseForWeightGradient(Method method, Storage data, Conv2dGeometry g) {
    Method chosen = choose(method, data, g);
    // FewRowsGemm names Vector API types, but MAX_ROWS is a compile-time constant that javac copies
    // into this class, so reading it loads nothing without the module.
    boolean fewRows =
        g.outChannels() <= FewRowsGemm.MAX_ROWS
            && Conv2dIm2col.columnRows(g) <= WEIGHT_GRADIENT_MAX_COLUMN_ROWS;
    // The implicit method stores no column matrix, so it stays where that matrix would not fit.
    boolean columnsFit = columnSize(g) <= Integer.MAX_VALUE;
    return method == Method.AUTO && chosen == Method.IMPLICIT && fewRows && columnsFit
        ? Method.IM2COL
        : chosen;
  }

  /** Method for the products. Tests and benchmarks force each one. */
  enum Method {
    /**
     * For float32, {@link #BATCHED} by the rule of {@link Conv2dBatched#MAX_POSITIONS}, else {@link
     * #IMPLICIT} by the rule of {@link #IMPLICIT_MIN_COLUMN_SIZE}, else {@link #IM2COL}. The weight
     * gradient takes {@link #IM2COL} in place of {@link #IMPLICIT} by the rule of {@link
     * #WEIGHT_GRADIENT_MAX_COLUMN_ROWS}.
     */
    AUTO,
    /** {@link Conv2dIm2col}: column matrix, then {@link Gemm}. */
    IM2COL,
    /** {@link Conv2dImplicit}; float32 only, and only when {@link VectorSupport#available()}. */
    IMPLICIT,
    /** {@link Conv2dBatched}: one product per group of images. */
    BATCHED
  }

  private Conv2dKernels() {}

  /**
   * Computes out[b, oc, oy, ox] = bias[oc] + sum over (ic, ky, kx) of weight[oc, ic, ky, kx] * x[b,
   * ic, oy * strideH - padH + ky * dilationH, ox * strideW - padW + kx * dilationW], with zeros
   * outside the input. {@code bias} may be null for no bias. Overwrites {@code out}.
   */
  public static void forward(
      Storage x, Storage weight, Storage bias, Conv2dGeometry g, Storage out) {
    forward(Method.AUTO, x, weight, bias, g, out);
  }

  /**
   * Runs {@link #forward(Storage, Storage, Storage, Conv2dGeometry, Storage)} by {@code method}.
   */
  static void forward(
      Method method, Storage x, Storage weight, Storage bias, Conv2dGeometry g, Storage out) {
    requireSize("input", x, g.inputSize());
    requireSize("weight", weight, g.weightSize());
    requireSize("output", out, g.outputSize());
    requireSameDtype(x, weight, out);
    if (bias != null) {
      requireSize("bias", bias, g.outChannels());
    }

    Method chosen = choose(method, x, g);
    if (chosen == Method.BATCHED) {
      Conv2dBatched.forward(x, weight, g, out, Conv2dBatched.maxImagesPerGroup(g));
    } else {
      boolean implicit = chosen == Method.IMPLICIT;
      // Each chunk of images writes only its own images of out, so any split gives the same bits.
      CpuParallel.forEachChunk(
          g.batch(),
          (chunk, firstImage, endImage) -> {
            for (int b = firstImage; b < endImage; b++) {
              if (implicit) {
                Conv2dImplicit.forwardImage(x.floats(), b, weight.floats(), g, out.floats());
              } else {
                Conv2dIm2col.forwardImage(x, b, weight, g, out);
              }
            }
          });
    }

    if (bias != null) {
      int positions = g.outHeight() * g.outWidth();
      // Each chunk adds the bias to its own images.
      CpuParallel.RangeBody addBias =
          (chunk, firstImage, endImage) -> {
            for (int b = firstImage; b < endImage; b++) {
              for (int oc = 0; oc < g.outChannels(); oc++) {
                addConstant(out, (b * g.outChannels() + oc) * positions, positions, bias.get(oc));
              }
            }
          };
      CpuParallel.forEachChunk(
          g.batch(), g.outputSize(), ElementwiseKernels.PARALLEL_MIN_ELEMENTS, addBias);
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
    backwardData(Method.AUTO, gradOut, weight, g, gradInput);
  }

  /** Runs {@link #backwardData(Storage, Storage, Conv2dGeometry, Storage)} by {@code method}. */
  static void backwardData(
      Method method, Storage gradOut, Storage weight, Conv2dGeometry g, Storage gradInput) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("weight", weight, g.weightSize());
    requireSize("input gradient", gradInput, g.inputSize());
    requireSameDtype(gradOut, weight, gradInput);

    Method chosen = choose(method, gradOut, g);
    if (chosen == Method.BATCHED) {
      Conv2dBatched.backwardData(gradOut, weight, g, gradInput, Conv2dBatched.maxImagesPerGroup(g));
      return;
    }
    boolean implicit = chosen == Method.IMPLICIT;
    // Each chunk of images writes only its own images of gradInput.
    CpuParallel.forEachChunk(
        g.batch(),
        (chunk, firstImage, endImage) -> {
          for (int b = firstImage; b < endImage; b++) {
            if (implicit) {
              Conv2dImplicit.backwardDataImage(
                  gradOut.floats(), b, weight.floats(), g, gradInput.floats());
            } else {
              Conv2dIm2col.backwardDataImage(gradOut, b, weight, g, gradInput);
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
    backwardWeight(Method.AUTO, gradOut, x, g, gradWeight);
  }

  /** Runs {@link #backwardWeight(Storage, Storage, Conv2dGeometry, Storage)} by {@code method}. */
  static void backwardWeight(
      Method method, Storage gradOut, Storage x, Conv2dGeometry g, Storage gradWeight) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("input", x, g.inputSize());
    requireSize("weight gradient", gradWeight, g.weightSize());
    requireSameDtype(gradOut, x, gradWeight);

    Method chosen = chooseForWeightGradient(method, x, g);
    if (g.batch() == 0) {
      // A sum over no images is zero. The loops below would not write gradWeight at all.
      Gemm.fillZero(gradWeight, 0, gradWeight.size());
      return;
    }
    if (chosen == Method.BATCHED) {
      Conv2dBatched.backwardWeight(gradOut, x, g, gradWeight, Conv2dBatched.maxImagesPerGroup(g));
      return;
    }
    boolean implicit = chosen == Method.IMPLICIT;
    // Chunk 0 sums its images into gradWeight and every other chunk into a partial sum of its own.
    // The partial sums are then added to gradWeight in chunk order, so the result depends on the
    // chunk count but not on thread timing. The partials live in the calling thread's workspace,
    // which no chunk uses for anything else.
    int chunks = CpuParallel.chunkCount(g.batch());
    int size = gradWeight.size();
    Storage partials = chunks > 1 ? partialSums(gradWeight, (chunks - 1) * size) : gradWeight;
    CpuParallel.forEachChunk(
        g.batch(),
        (chunk, firstImage, endImage) -> {
          Storage target = chunk == 0 ? gradWeight : partials;
          int offset = chunk == 0 ? 0 : (chunk - 1) * size;
          for (int b = firstImage; b < endImage; b++) {
            boolean accumulate = b > firstImage;
            if (implicit) {
              Conv2dImplicit.backwardWeightImage(
                  gradOut.floats(), x.floats(), b, g, target.floats(), offset, accumulate);
            } else {
              Conv2dIm2col.backwardWeightImage(gradOut, x, b, g, target, offset, accumulate);
            }
          }
        });
    for (int t = 1; t < chunks; t++) {
      addInto(partials, (t - 1) * size, gradWeight);
    }
  }

  /**
   * Computes the gradient of the loss with respect to the bias and overwrites {@code gradBias}
   * [outChannels] with it.
   *
   * <p>Math: gradBias[oc] = sum over b, oy, ox of gradOut[b, oc, oy, ox], summed in double.
   *
   * <p>The channels are split over the pool. Each channel's sum runs in a fixed order on one
   * thread, so the result does not depend on the thread count.
   */
  public static void backwardBias(Storage gradOut, Conv2dGeometry g, Storage gradBias) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("bias gradient", gradBias, g.outChannels());

    int positions = g.outHeight() * g.outWidth();
    int channels = g.outChannels();
    CpuParallel.RangeBody sumChannels =
        (chunk, first, end) -> {
          for (int oc = first; oc < end; oc++) {
            double sum = 0;
            for (int b = 0; b < g.batch(); b++) {
              sum += sumRange(gradOut, (b * channels + oc) * positions, positions);
            }
            gradBias.set(oc, sum);
          }
        };
    CpuParallel.forEachChunk(
        channels, g.outputSize(), ElementwiseKernels.PARALLEL_MIN_ELEMENTS, sumChannels);
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
    Conv2dIm2col.im2col(image, imageOffset, g, col, 0, g.outHeight() * g.outWidth());
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
    Conv2dIm2col.col2im(col, 0, g.outHeight() * g.outWidth(), g, image, imageOffset);
  }

  /**
   * Returns the method that runs the products: as forced, or for AUTO by the rules of {@link
   * Conv2dBatched#MAX_POSITIONS} and {@link #IMPLICIT_MIN_COLUMN_SIZE}, both measured on float32.
   * AUTO never picks IMPLICIT when the JVM lacks the Vector API (see {@link VectorSupport}).
   *
   * @throws IllegalArgumentException if IMPLICIT is forced on float64 storage
   * @throws IllegalStateException if IMPLICIT is forced in a JVM without the Vector API
   */
  static Method choose(Method method, Storage data, Conv2dGeometry g) {
    boolean float32 = data instanceof Storage.F32;
    if (method == Method.IMPLICIT && !float32) {
      throw new IllegalArgumentException(
          "the implicit-GEMM conv2d method is float32 only, got " + data.dtype());
    }
    if (method == Method.IMPLICIT && !VectorSupport.available()) {
      throw new IllegalStateException(
          "the implicit-GEMM conv2d method was forced, but the "
              + VectorSupport.MODULE
              + " module is missing: start the JVM with --add-modules "
              + VectorSupport.MODULE);
    }
    if (method != Method.AUTO) {
      return method;
    }
    if (float32 && Conv2dBatched.prefers(g)) {
      return Method.BATCHED;
    }
    boolean implicit =
        float32
            && !Conv2dIm2col.isPointwise(g)
            && columnSize(g) >= IMPLICIT_MIN_COLUMN_SIZE
            && VectorSupport.available();
    return implicit ? Method.IMPLICIT : Method.IM2COL;
  }

  /** Returns the element count of one image's column matrix, taps * positions. */
  private static long columnSize(Conv2dGeometry g) {
    return (long) Conv2dIm2col.columnRows(g) * g.outHeight() * g.outWidth();
  }

  /** Returns the calling thread's partial-sum buffer, of the dtype of {@code like}. */
  private static Storage partialSums(Storage like, int size) {
    if (like instanceof Storage.F32) {
      return Storage.wrap(Workspace.floats(Workspace.Slot.CONV_PARTIAL, size));
    }
    return Storage.wrap(Workspace.doubles(Workspace.Slot.CONV_PARTIAL, size));
  }

  /** Adds the {@code target.size()} elements of {@code source} from {@code offset} to target. */
  private static void addInto(Storage source, int offset, Storage target) {
    if (target instanceof Storage.F32) {
      float[] from = source.floats();
      float[] to = target.floats();
      for (int i = 0; i < to.length; i++) {
        to[i] += from[offset + i];
      }
    } else {
      double[] from = source.doubles();
      double[] to = target.doubles();
      for (int i = 0; i < to.length; i++) {
        to[i] += from[offset + i];
      }
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

  /**
   * Returns the sum of {@code length} values from {@code offset}, in double. Float32 values go to
   * four partial sums in turn, the last {@code length % 4} to the first, and the sums are added at
   * the end as (s0 + s1) + (s2 + s3). Four independent additions per step keep the adder busy,
   * where a single running sum waits for the previous addition at every element.
   */
  private static double sumRange(Storage storage, int offset, int length) {
    if (storage instanceof Storage.F32) {
      float[] data = storage.floats();
      double s0 = 0;
      double s1 = 0;
      double s2 = 0;
      double s3 = 0;
      int end = offset + length;
      int i = offset;
      for (; i + 3 < end; i += 4) {
        s0 += data[i];
        s1 += data[i + 1];
        s2 += data[i + 2];
        s3 += data[i + 3];
      }
      for (; i < end; i++) {
        s0 += data[i];
      }
      return (s0 + s1) + (s2 + s3);
    }
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
    long needed = columnSize(g);
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
