package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/**
 * Resizes a sample so that its shorter side becomes {@code shorterSide} pixels, keeping the aspect
 * ratio. The longer side is rounded to the nearest pixel. Keypoints scale by the exact per-axis
 * factors {@code newWidth / oldWidth} and {@code newHeight / oldHeight}, which map the continuous
 * image rectangle onto the new one.
 *
 * <p>Each axis is resampled separately. Where an axis shrinks by more than 2×, an output pixel is
 * the area-weighted mean of the source pixels under its footprint, because bilinear sampling there
 * skips source pixels and aliases. Otherwise an output pixel is the bilinear interpolation of the
 * two source pixels whose centres surround its centre, with the edge pixels replicated past the
 * border. Both are convex combinations, so values stay within the source range up to float
 * rounding.
 */
public final class Rescale implements Transform {
  private final int shorterSide;

  /** Creates a rescale to a shorter side of {@code shorterSide} pixels. */
  public Rescale(int shorterSide) {
    if (shorterSide <= 0) {
      throw new IllegalArgumentException("shorterSide must be positive, got " + shorterSide);
    }
    this.shorterSide = shorterSide;
  }

  /** Returns the target length of the shorter side, in pixels. */
  public int shorterSide() {
    return shorterSide;
  }

  /** Returns the size this transform gives an image of {@code width × height} pixels. */
  public Size outputSize(int width, int height) {
    if (width <= height) {
      return new Size(shorterSide, scaledLength(height, shorterSide, width));
    }
    return new Size(scaledLength(width, shorterSide, height), shorterSide);
  }

  @Override
  public Sample apply(Sample sample, Generator random) {
    GrayImage source = sample.image();
    Size size = outputSize(source.width(), source.height());
    GrayImage resized = resize(source, size.width(), size.height());

    double scaleX = (double) size.width() / source.width();
    double scaleY = (double) size.height() / source.height();
    double[] keypoints = new double[sample.keypoints().length];
    for (int i = 0; i < keypoints.length; i += 2) {
      keypoints[i] = sample.keypoints()[i] * scaleX;
      keypoints[i + 1] = sample.keypoints()[i + 1] * scaleY;
    }
    return sample.with(resized, keypoints);
  }

  /**
   * Resizes {@code image} to {@code width × height} pixels with the sampling described in the class
   * comment. The two axes may scale by different factors.
   */
  public static GrayImage resize(GrayImage image, int width, int height) {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException(
          "target size must be positive, got " + width + "x" + height);
    }
    // The horizontal pass needs width × source height floats, and the result width × height.
    requireArrayLength(image, width, height, (long) width * image.height());
    requireArrayLength(image, width, height, (long) width * height);

    AxisTaps columns = AxisTaps.build(image.width(), width);
    AxisTaps rows = AxisTaps.build(image.height(), height);
    float[] source = image.pixels();

    // Horizontal pass: every source row becomes a row of the target width.
    float[] horizontal = new float[width * image.height()];
    for (int y = 0; y < image.height(); y++) {
      int sourceRow = y * image.width();
      int targetRow = y * width;
      for (int u = 0; u < width; u++) {
        int start = sourceRow + columns.first[u];
        int weightOffset = columns.offset[u];
        float sum = 0f;
        for (int k = 0; k < columns.count[u]; k++) {
          sum += columns.weights[weightOffset + k] * source[start + k];
        }
        horizontal[targetRow + u] = sum;
      }
    }

    // Vertical pass: accumulate whole rows, which reads memory in order.
    float[] target = new float[width * height];
    for (int v = 0; v < height; v++) {
      int targetRow = v * width;
      for (int k = 0; k < rows.count[v]; k++) {
        float weight = rows.weights[rows.offset[v] + k];
        int sourceRow = (rows.first[v] + k) * width;
        for (int u = 0; u < width; u++) {
          target[targetRow + u] += weight * horizontal[sourceRow + u];
        }
      }
    }
    return new GrayImage(width, height, target);
  }

  private static int scaledLength(int length, int shorterTarget, int shorterSource) {
    long rounded = Math.round((double) length * shorterTarget / shorterSource);
    if (rounded > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "rescaling the shorter side from "
              + shorterSource
              + " to "
              + shorterTarget
              + " pixels makes the longer side "
              + rounded
              + " pixels, more than an int holds; crop the image to a less extreme aspect ratio");
    }
    return (int) Math.max(1, rounded);
  }

  private static void requireArrayLength(GrayImage image, int width, int height, long length) {
    if (length > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "resizing a "
              + image.width()
              + "x"
              + image.height()
              + " image to "
              + width
              + "x"
              + height
              + " needs an array of "
              + length
              + " floats, more than a Java array holds; crop or downscale the image first");
    }
  }

  /** An image size in pixels. */
  public record Size(int width, int height) {}

  /**
   * Source taps along one axis: output index {@code i} is the sum over {@code k < count[i]} of
   * {@code weights[offset[i] + k]} times source index {@code first[i] + k}.
   */
  private static final class AxisTaps {
    final int[] first;
    final int[] count;
    final int[] offset;
    final float[] weights;

    private AxisTaps(int targetLength, int maxTaps) {
      first = new int[targetLength];
      count = new int[targetLength];
      offset = new int[targetLength];
      weights = new float[targetLength * maxTaps];
    }

    static AxisTaps build(int sourceLength, int targetLength) {
      double ratio = (double) sourceLength / targetLength;
      return ratio > 2
          ? area(sourceLength, targetLength, ratio)
          : bilinear(sourceLength, targetLength, ratio);
    }

    /** Output pixel {@code i} covers the source interval [i·ratio, (i + 1)·ratio). */
    private static AxisTaps area(int sourceLength, int targetLength, double ratio) {
      int maxTaps = (int) Math.ceil(ratio) + 1;
      AxisTaps taps = new AxisTaps(targetLength, maxTaps);
      for (int i = 0; i < targetLength; i++) {
        double low = i * ratio;
        double high = Math.min(sourceLength, (i + 1) * ratio);
        int firstIndex = (int) Math.floor(low);
        int lastIndex = Math.min(sourceLength - 1, (int) Math.ceil(high) - 1);

        taps.first[i] = firstIndex;
        taps.count[i] = lastIndex - firstIndex + 1;
        taps.offset[i] = i * maxTaps;
        for (int j = firstIndex; j <= lastIndex; j++) {
          double overlap = Math.min(high, j + 1) - Math.max(low, j);
          taps.weights[i * maxTaps + j - firstIndex] = (float) (overlap / (high - low));
        }
      }
      return taps;
    }

    /** Output centre i + 0.5 maps to source position (i + 0.5)·ratio, between two centres. */
    private static AxisTaps bilinear(int sourceLength, int targetLength, double ratio) {
      AxisTaps taps = new AxisTaps(targetLength, 2);
      for (int i = 0; i < targetLength; i++) {
        double position = (i + 0.5) * ratio - 0.5;
        int left = (int) Math.floor(position);
        float fraction = (float) (position - left);
        taps.offset[i] = 2 * i;

        if (left < 0 || left >= sourceLength - 1) {
          // Past the first or last centre the edge pixel is replicated.
          taps.first[i] = Math.clamp(left, 0, sourceLength - 1);
          taps.count[i] = 1;
          taps.weights[2 * i] = 1f;
        } else {
          taps.first[i] = left;
          taps.count[i] = 2;
          taps.weights[2 * i] = 1f - fraction;
          taps.weights[2 * i + 1] = fraction;
        }
      }
      return taps;
    }
  }
}
