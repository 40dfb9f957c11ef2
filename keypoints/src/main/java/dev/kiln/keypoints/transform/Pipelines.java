package dev.kiln.keypoints.transform;

import java.util.function.UnaryOperator;

/**
 * The transform chains of the keypoint detector, for a square network input of side S.
 *
 * <p>Both chains first rescale the shorter side to round(1.15·S), so a crop of S keeps most of the
 * face while leaving a margin for the random crop to move in.
 */
public final class Pipelines {

  /** Ratio of the rescaled shorter side to the crop side. */
  public static final double RESCALE_MARGIN = 1.15;

  /** Largest rotation of the training augmentation, in degrees either way. */
  public static final double MAX_DEGREES = 10;

  /** Smallest scale factor of the training augmentation. */
  public static final double MIN_SCALE = 0.9;

  /** Largest scale factor of the training augmentation. */
  public static final double MAX_SCALE = 1.1;

  /** Probability of the training mirror flip. */
  public static final double FLIP_PROBABILITY = 0.5;

  /** Largest brightness offset of the training augmentation, in pixel values. */
  public static final double MAX_BRIGHTNESS = 0.1;

  /** Largest relative contrast change of the training augmentation. */
  public static final double MAX_CONTRAST = 0.2;

  private Pipelines() {}

  /** Returns the shorter side that both chains rescale to before cropping, round(1.15·S). */
  public static int rescaledSide(int inputSize) {
    requirePositive("inputSize", inputSize);
    return (int) Math.round(inputSize * RESCALE_MARGIN);
  }

  /**
   * Returns the training chain: rescale to round(1.15·S), random rotation ±10° and scale 0.9-1.1,
   * random S × S crop, mirror flip with probability 0.5, brightness ±0.1 and contrast ±20%.
   */
  public static Compose training(int inputSize) {
    return Compose.of(
        new Rescale(rescaledSide(inputSize)),
        new RandomAffine(MAX_DEGREES, MIN_SCALE, MAX_SCALE),
        new RandomCrop(inputSize),
        new HorizontalFlip(FLIP_PROBABILITY),
        new BrightnessContrast(MAX_BRIGHTNESS, MAX_CONTRAST));
  }

  /** Returns the evaluation chain: rescale to round(1.15·S), then the central S × S crop. */
  public static Compose evaluation(int inputSize) {
    return Compose.of(new Rescale(rescaledSide(inputSize)), new CenterCrop(inputSize));
  }

  /**
   * Returns the map from keypoints in pixels of the evaluation chain's output back to pixels of the
   * original {@code originalWidth × originalHeight} image, the inverse of {@link
   * #evaluation(int)}'s rescale and crop. The function returns a new array of the same length.
   */
  public static UnaryOperator<double[]> evaluationInverse(
      int originalWidth, int originalHeight, int inputSize) {
    requirePositive("originalWidth", originalWidth);
    requirePositive("originalHeight", originalHeight);
    Rescale.Size rescaled =
        new Rescale(rescaledSide(inputSize)).outputSize(originalWidth, originalHeight);
    CenterCrop crop = new CenterCrop(inputSize);
    int left = crop.offset(rescaled.width());
    int top = crop.offset(rescaled.height());
    double scaleX = (double) rescaled.width() / originalWidth;
    double scaleY = (double) rescaled.height() / originalHeight;

    return cropKeypoints -> {
      double[] original = new double[cropKeypoints.length];
      for (int i = 0; i + 1 < cropKeypoints.length; i += 2) {
        original[i] = (cropKeypoints[i] + left) / scaleX;
        original[i + 1] = (cropKeypoints[i + 1] + top) / scaleY;
      }
      return original;
    };
  }

  private static void requirePositive(String name, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(name + " must be positive, got " + value);
    }
  }
}
