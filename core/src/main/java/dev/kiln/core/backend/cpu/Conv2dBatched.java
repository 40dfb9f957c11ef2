package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * The batched im2col convolution: the column matrices of a group of images stand side by side in
 * one [taps, images * positions] matrix, so each direction runs one {@link Gemm} product per group
 * instead of one per image. It suits layers with few output positions per image, where a per-image
 * product packs the whole weight matrix for a few dozen columns.
 *
 * <p>Layout: image i of a group owns the columns [i * positions, (i + 1) * positions) of both the
 * column matrix (slot {@link Workspace.Slot#CONV_COLUMNS}) and the output-channel-major matrix
 * [outChannels, images * positions] (slot {@link Workspace.Slot#CONV_PRODUCT}) that contains the
 * output or the output gradient of the group. Both buffers belong to the calling thread.
 *
 * <p>Threading: the products are called from the calling thread, so {@link VectorGemm} splits them
 * among the {@link CpuParallel} threads. im2col, col2im and the copies between NCHW storage and the
 * product matrix are split by image, and each chunk writes only its own images' columns or pixels.
 * The groups depend on the geometry only, and {@link VectorGemm} sums each element of C on one
 * thread in a fixed depth order, so all three directions give the same bits for any thread count.
 * float64 products go through {@link Gemm}'s loop or EJML, which run on the calling thread.
 *
 * <p>Both dtypes work when the method is forced, but AUTO picks it for float32 only: the rule of
 * {@link #MAX_POSITIONS} was measured on {@link VectorGemm}, and float64 products run on other code
 * whose speed depends on the shape in other ways.
 */
final class Conv2dBatched {

  /**
   * Maximum size of the column matrix of one group, taps * images * positions elements: 4 MiB of
   * float32, so the column matrix and the product matrix stay a few MiB per thread. A group has at
   * least one image, so an image with a larger column matrix forms a group of its own.
   */
  static final long MAX_GROUP_COLUMN_SIZE = 1L << 20;

  /**
   * Output positions per image (outHeight * outWidth) up to which AUTO picks this method for
   * float32 batches of two or more images, in all three directions.
   *
   * <p>Measured with a throwaway timing loop on the conv layers of the presets at batch 10 and 32
   * (random float32 operands, no bias): wall time of one call, median of 9 after 4 warm-up calls,
   * the three methods interleaved, with {@code kiln.threads} 2 as in training (the per-image
   * methods split the images, this one splits each product) and 1. Machine: a 2-core AMD EPYC with
   * AVX-512 and JDK 25 that other builds shared. Milliseconds per call, im2col / implicit /
   * batched, 2 threads:
   *
   * <pre>
   *   layer           batch  positions  forward             backwardData        backwardWeight
   *   default/0        10    9216       0.57 0.53 1.44      1.15 0.87 1.15      1.98 2.00 2.70
   *   default/4        10    2304       1.92 1.93 2.80      2.20 2.16 2.90      2.87 3.07 4.09
   *   default/8        10     576       1.63 1.77 3.54      1.78 1.69 2.62      2.13 2.29 4.50
   *   default/12       10     144       1.79 1.80 2.86      1.77 1.69 1.87      1.85 1.85 2.93
   *   default/16       10      36       3.01 2.97 1.79      2.96 2.97 1.55      1.82 1.81 1.61
   *   naimishnet/0     10    8649       1.32 1.27 1.78      1.45 1.33 1.76      2.55 2.58 3.64
   *   naimishnet/4     10    1936       4.90 5.02 6.26      5.50 5.40 8.02      5.96 6.26 8.46
   *   naimishnet/8     10     441       1.84 1.86 2.34      2.05 1.96 2.41      2.05 2.09 2.52
   *   naimishnet/12    10     100       0.53 0.58 0.54      0.53 0.59 0.53      0.43 0.50 0.59
   *   lenet-20m/9      10     144       6.30 6.30 6.55      6.12 6.42 5.73      5.79 5.85 6.33
   *   lenet-48m/9      10     676       0.37 0.46 0.55      0.38 0.54 0.58      0.52 0.61 0.78
   *   default/0        32    9216       1.71 1.58 3.13      2.25 1.99 2.90      5.24 5.27 8.47
   *   default/4        32    2304       6.07 6.06 8.57      7.06 6.83 9.26      8.85 9.51 12.90
   *   default/8        32     576       5.10 5.34 6.45      5.49 5.57 6.36      6.21 6.47 7.62
   *   default/12       32     144       5.60 5.57 5.42      5.45 5.65 5.11      5.22 5.38 5.57
   *   default/16       32      36       9.39 9.33 5.18      9.37 9.56 4.60      5.44 5.43 5.09
   *   naimishnet/0     32    8649       4.12 4.07 5.47      4.98 4.68 5.44      8.90 9.07 11.77
   *   naimishnet/4     32    1936      15.42 16.15 19.75   17.59 17.44 24.88   18.95 20.14 27.12
   *   naimishnet/8     32     441       6.04 6.12 6.65      6.53 6.60 6.92      6.72 7.01 7.47
   *   naimishnet/12    32     100       1.65 1.77 1.62      1.72 1.99 1.51      1.34 1.51 1.73
   *   lenet-20m/9      32     144      20.78 20.71 19.65   19.66 20.65 18.08   19.06 19.79 20.03
   *   lenet-48m/9      32     676       1.47 1.64 2.12      1.48 1.82 2.02      2.01 2.24 2.62
   * </pre>
   *
   * <p>With 1 thread the pattern is the same: at default/16, batch 32, batched takes 9.65, 8.50 and
   * 9.54 ms against 18.5, 18.4 and 10.3 for im2col, and from 441 positions on it is up to 55%
   * slower. So the batched method halves forward and backwardData at 36 positions, where a
   * per-image product packs the whole weight for 36 columns. At 100 and 144 positions, against
   * im2col, it saves 2-12% in forward and backwardData at batch 32 and is within 7% at batch 10,
   * except the batch-10 forward of default/12: 2.86 against 1.79 ms. Its backwardWeight is 5-58%
   * slower at both batches, the most again at default/12, batch 10: 2.93 against 1.85 ms. NOTE: no
   * record shows whether repeated runs confirm that forward time, which differs from every other
   * forward at these sizes. From 441 positions on it is slower, probably because the column matrix
   * of a group outgrows the L2 cache and each group costs three hand-overs to the pool. The limit
   * sits between 36 and 100, where no preset layer lies.
   *
   * <p>Groups of at most 2^18 column elements were 10-50% slower at 36 and 144 positions than the
   * 2^20 of {@link #MAX_GROUP_COLUMN_SIZE}, and 2^22 was within the noise of 2^20.
   */
  static final int MAX_POSITIONS = 64;

  private Conv2dBatched() {}

  /** Applies the rule of {@link #MAX_POSITIONS}. */
  static boolean prefers(Conv2dGeometry g) {
    return g.batch() > 1 && g.outHeight() * g.outWidth() <= MAX_POSITIONS;
  }

  /** Returns how many images one group may contain under {@link #MAX_GROUP_COLUMN_SIZE}. */
  static int maxImagesPerGroup(Conv2dGeometry g) {
    long imageColumnSize = (long) Conv2dIm2col.columnRows(g) * g.outHeight() * g.outWidth();
    return (int) Math.max(1, Math.min(g.batch(), MAX_GROUP_COLUMN_SIZE / imageColumnSize));
  }

  /**
   * Computes out[b] = weight (outChannels x taps) * col(x[b]) for every image, one product per
   * group of at most {@code maxImages} images. Adds no bias.
   */
  static void forward(Storage x, Storage weight, Conv2dGeometry g, Storage out, int maxImages) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int groups = Math.ceilDiv(g.batch(), maxImages);
    for (int group = 0; group < groups; group++) {
      int first = CpuParallel.chunkStart(g.batch(), groups, group);
      int images = CpuParallel.chunkStart(g.batch(), groups, group + 1) - first;
      int width = images * positions;
      // The product matrix contains the group's part of the output, so its size fits an int. The
      // column matrix has taps rows in place of outChannels and may not, which the size check
      // reports.
      Storage col =
          buffer(x, Workspace.Slot.CONV_COLUMNS, Conv2dIm2col.columnMatrixSize(taps, width));
      Storage product = buffer(x, Workspace.Slot.CONV_PRODUCT, g.outChannels() * width);

      CpuParallel.forEachChunk(
          images,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              Conv2dIm2col.im2col(x, imageOffset(g, first + i), g, col, i * positions, width);
            }
          });
      Gemm.gemm(false, false, g.outChannels(), width, taps, weight, 0, col, 0, product, 0, false);
      CpuParallel.forEachChunk(
          images,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              copyImage(product, width, i, out, first + i, g, true);
            }
          });
    }
  }

  /**
   * Computes gradInput[b] = col2im(weight^T (taps x outChannels) * gradOut[b]) for every image, one
   * product per group of at most {@code maxImages} images.
   */
  static void backwardData(
      Storage gradOut, Storage weight, Conv2dGeometry g, Storage gradInput, int maxImages) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int groups = Math.ceilDiv(g.batch(), maxImages);
    for (int group = 0; group < groups; group++) {
      int first = CpuParallel.chunkStart(g.batch(), groups, group);
      int images = CpuParallel.chunkStart(g.batch(), groups, group + 1) - first;
      int width = images * positions;
      Storage col =
          buffer(gradOut, Workspace.Slot.CONV_COLUMNS, Conv2dIm2col.columnMatrixSize(taps, width));
      Storage product = buffer(gradOut, Workspace.Slot.CONV_PRODUCT, g.outChannels() * width);

      CpuParallel.forEachChunk(
          images,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              copyImage(product, width, i, gradOut, first + i, g, false);
            }
          });
      Gemm.gemm(true, false, taps, width, g.outChannels(), weight, 0, product, 0, col, 0, false);
      CpuParallel.forEachChunk(
          images,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              Conv2dIm2col.col2im(
                  col, i * positions, width, g, gradInput, imageOffset(g, first + i));
            }
          });
    }
  }

  /**
   * Overwrites gradWeight (outChannels x taps) with the sum over images of gradOut[b] *
   * col(x[b])^T. Each group adds one product of depth images * positions, and the groups are added
   * in order.
   */
  static void backwardWeight(
      Storage gradOut, Storage x, Conv2dGeometry g, Storage gradWeight, int maxImages) {
    int taps = Conv2dIm2col.columnRows(g);
    int positions = g.outHeight() * g.outWidth();
    int groups = Math.ceilDiv(g.batch(), maxImages);
    for (int group = 0; group < groups; group++) {
      int first = CpuParallel.chunkStart(g.batch(), groups, group);
      int images = CpuParallel.chunkStart(g.batch(), groups, group + 1) - first;
      int width = images * positions;
      Storage col =
          buffer(x, Workspace.Slot.CONV_COLUMNS, Conv2dIm2col.columnMatrixSize(taps, width));
      Storage product = buffer(x, Workspace.Slot.CONV_PRODUCT, g.outChannels() * width);

      CpuParallel.forEachChunk(
          images,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              Conv2dIm2col.im2col(x, imageOffset(g, first + i), g, col, i * positions, width);
              copyImage(product, width, i, gradOut, first + i, g, false);
            }
          });
      Gemm.gemm(
          false, true, g.outChannels(), taps, width, product, 0, col, 0, gradWeight, 0, group > 0);
    }
  }

  /**
   * Copies image {@code b} of the NCHW storage {@code nchw} [batch, outChannels, positions] to or
   * from the column block {@code i} of the [outChannels, width] matrix {@code product}: into nchw
   * when {@code toNchw} is set, else into product.
   */
  private static void copyImage(
      Storage product, int width, int i, Storage nchw, int b, Conv2dGeometry g, boolean toNchw) {
    int positions = g.outHeight() * g.outWidth();
    for (int oc = 0; oc < g.outChannels(); oc++) {
      int productStart = oc * width + i * positions;
      int nchwStart = (b * g.outChannels() + oc) * positions;
      if (toNchw) {
        copy(product, productStart, nchw, nchwStart, positions);
      } else {
        copy(nchw, nchwStart, product, productStart, positions);
      }
    }
  }

  private static void copy(Storage from, int fromStart, Storage to, int toStart, int length) {
    if (from instanceof Storage.F32) {
      System.arraycopy(from.floats(), fromStart, to.floats(), toStart, length);
    } else {
      System.arraycopy(from.doubles(), fromStart, to.doubles(), toStart, length);
    }
  }

  /** Returns the offset of image {@code b} in an NCHW input of the geometry. */
  private static int imageOffset(Conv2dGeometry g, int b) {
    return b * g.inChannels() * g.inHeight() * g.inWidth();
  }

  /** Returns this thread's buffer of {@code slot} with room for {@code size} elements. */
  private static Storage buffer(Storage like, Workspace.Slot slot, int size) {
    if (like instanceof Storage.F32) {
      return Storage.wrap(Workspace.floats(slot, size));
    }
    return Storage.wrap(Workspace.doubles(slot, size));
  }
}
