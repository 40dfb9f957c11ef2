package dev.kiln.keypoints.data;

/**
 * Resampling of gray images, one axis at a time. An axis that shrinks uses area averaging: each
 * output pixel is the mean of the input over its footprint, counting partly covered pixels by the
 * covered fraction, so no input pixel is skipped and no aliasing appears. An axis that grows uses
 * bilinear interpolation between pixel centres, clamped at the border. Both keep the continuous
 * coordinate frame of {@link GrayImage}: a point at x in an image of width w maps to {@code x *
 * newWidth / w}.
 */
final class ImageResize {

  private ImageResize() {}

  /**
   * Returns the size {width, height} that makes the shorter side of a {@code width x height} image
   * equal to {@code shorterSide}, keeping the aspect ratio (the longer side is rounded).
   */
  static int[] sizeForShorterSide(int width, int height, int shorterSide) {
    double scale = (double) shorterSide / Math.min(width, height);
    int newWidth = width <= height ? shorterSide : (int) Math.max(1, Math.round(width * scale));
    int newHeight = height < width ? shorterSide : (int) Math.max(1, Math.round(height * scale));
    return new int[] {newWidth, newHeight};
  }

  /** Returns {@code image} resampled to {@code newWidth x newHeight}. */
  static GrayImage resize(GrayImage image, int newWidth, int newHeight) {
    if (newWidth == image.width() && newHeight == image.height()) {
      return image;
    }

    int width = image.width();
    int height = image.height();
    Kernel horizontal = Kernel.of(width, newWidth);
    Kernel vertical = Kernel.of(height, newHeight);

    // Rows first: width -> newWidth for each of the height rows.
    float[] rows = new float[newWidth * height];
    for (int y = 0; y < height; y++) {
      horizontal.apply(image.pixels(), y * width, 1, rows, y * newWidth, 1);
    }

    // Then columns: height -> newHeight for each of the newWidth columns.
    float[] out = new float[newWidth * newHeight];
    for (int x = 0; x < newWidth; x++) {
      vertical.apply(rows, x, newWidth, out, x, newWidth);
    }
    return new GrayImage(newWidth, newHeight, out);
  }

  /** The input indices and weights that make up each output sample along one axis. */
  private record Kernel(int[] first, float[][] weights) {

    static Kernel of(int inSize, int outSize) {
      int[] first = new int[outSize];
      float[][] weights = new float[outSize][];
      double step = (double) inSize / outSize;

      for (int i = 0; i < outSize; i++) {
        if (outSize <= inSize) {
          // Area average over the input interval [i * step, (i + 1) * step).
          double start = i * step;
          double end = Math.min(inSize, (i + 1) * step);
          int from = (int) Math.floor(start);
          int to = Math.min(inSize, (int) Math.ceil(end));
          first[i] = from;
          weights[i] = new float[to - from];
          for (int j = from; j < to; j++) {
            double overlap = Math.min(end, j + 1) - Math.max(start, j);
            weights[i][j - from] = (float) (overlap / (end - start));
          }
        } else if (inSize == 1) {
          first[i] = 0;
          weights[i] = new float[] {1};
        } else {
          // Bilinear between the two input pixel centres around the output centre.
          double source = Math.clamp((i + 0.5) * step - 0.5, 0, inSize - 1);
          int left = Math.min((int) Math.floor(source), inSize - 2);
          double t = source - left;
          first[i] = left;
          weights[i] = new float[] {(float) (1 - t), (float) t};
        }
      }
      return new Kernel(first, weights);
    }

    void apply(float[] in, int inOffset, int inStride, float[] out, int outOffset, int outStride) {
      for (int i = 0; i < first.length; i++) {
        float sum = 0;
        float[] w = weights[i];
        int index = inOffset + first[i] * inStride;
        for (int k = 0; k < w.length; k++) {
          sum += w[k] * in[index + k * inStride];
        }
        out[outOffset + i * outStride] = sum;
      }
    }
  }
}
