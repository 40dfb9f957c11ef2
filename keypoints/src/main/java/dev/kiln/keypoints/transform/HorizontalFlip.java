package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/**
 * Mirrors a sample left to right with a given probability. Pixel column x moves to {@code width - 1
 * - x}, and a keypoint at x moves to {@code width - x}. The mirror turns the face's left eye into
 * its right one, so point indices are also swapped with {@link #MIRROR_PERMUTATION}: output point
 * {@code i} is the mirrored input point {@code MIRROR_PERMUTATION[i]}.
 */
public final class HorizontalFlip implements Transform {

  /**
   * The left-right index swap of the 68-point markup (iBUG 300-W numbering): jaw i ↔ 16 − i, brows
   * 17-21 ↔ 26-22, nose wings 31-32 ↔ 35-34, eyes 36-41 ↔ 45-42 and 47-46, outer lip 48-50 ↔ 54-52
   * and 55-56 ↔ 59-58, inner lip 60-61 ↔ 64-63 and 65 ↔ 67. Points 8, 27-30, 33, 51, 57, 62 and 66
   * lie on the midline and map to themselves. It is its own inverse. Callers must not modify the
   * array, because every flip reads it.
   */
  public static final int[] MIRROR_PERMUTATION = buildPermutation();

  private final double probability;

  /** Creates a flip applied with {@code probability}, in [0, 1]. */
  public HorizontalFlip(double probability) {
    if (!(probability >= 0 && probability <= 1)) {
      throw new IllegalArgumentException("probability must be in [0, 1], got " + probability);
    }
    this.probability = probability;
  }

  /** Returns the probability that {@link #apply} mirrors the sample. */
  public double probability() {
    return probability;
  }

  /** Returns the sample, mirrored with the configured probability; draws one double every call. */
  @Override
  public Sample apply(Sample sample, Generator random) {
    boolean flip = random.nextDouble() < probability;
    return flip ? mirror(sample) : sample;
  }

  /** Returns the mirrored sample, with point indices swapped by {@link #MIRROR_PERMUTATION}. */
  public static Sample mirror(Sample sample) {
    GrayImage image = sample.image();
    int width = image.width();
    float[] source = image.pixels();
    float[] mirrored = new float[source.length];
    for (int y = 0; y < image.height(); y++) {
      int row = y * width;
      for (int x = 0; x < width; x++) {
        mirrored[row + x] = source[row + width - 1 - x];
      }
    }

    double[] keypoints = new double[sample.keypoints().length];
    for (int i = 0; i < Sample.POINTS; i++) {
      int from = MIRROR_PERMUTATION[i];
      keypoints[2 * i] = width - sample.x(from);
      keypoints[2 * i + 1] = sample.y(from);
    }
    return sample.with(new GrayImage(width, image.height(), mirrored), keypoints);
  }

  private static int[] buildPermutation() {
    int[] permutation = new int[Sample.POINTS];
    for (int i = 0; i < permutation.length; i++) {
      permutation[i] = i;
    }

    int[][] pairs = {
      // Jaw line.
      {0, 16},
      {1, 15},
      {2, 14},
      {3, 13},
      {4, 12},
      {5, 11},
      {6, 10},
      {7, 9},
      // Eyebrows.
      {17, 26},
      {18, 25},
      {19, 24},
      {20, 23},
      {21, 22},
      // Nose wings.
      {31, 35},
      {32, 34},
      // Eyes.
      {36, 45},
      {37, 44},
      {38, 43},
      {39, 42},
      {40, 47},
      {41, 46},
      // Outer lip.
      {48, 54},
      {49, 53},
      {50, 52},
      {55, 59},
      {56, 58},
      // Inner lip.
      {60, 64},
      {61, 63},
      {65, 67},
    };
    for (int[] pair : pairs) {
      permutation[pair[0]] = pair[1];
      permutation[pair[1]] = pair[0];
    }
    return permutation;
  }
}
