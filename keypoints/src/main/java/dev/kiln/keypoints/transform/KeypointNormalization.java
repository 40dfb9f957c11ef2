package dev.kiln.keypoints.transform;

import java.util.Map;

/**
 * The map between keypoints in pixels of a square network input of side S and the normalized
 * targets the network learns: {@code n = (p − S/2) / (S/2)} on both axes, so the input spans [−1,
 * 1] and its centre is 0. The same constants go into a checkpoint's metadata, so that prediction
 * undoes exactly the map that training used.
 */
public record KeypointNormalization(int inputSize) {

  /** Metadata key for the input side S, in pixels. */
  public static final String INPUT_SIZE_KEY = "keypoints.normalization.input_size";

  /** Metadata key for the subtracted centre, S/2 pixels. */
  public static final String CENTER_KEY = "keypoints.normalization.center";

  /** Metadata key for the divisor, S/2 pixels. */
  public static final String SCALE_KEY = "keypoints.normalization.scale";

  public KeypointNormalization {
    if (inputSize <= 0) {
      throw new IllegalArgumentException("inputSize must be positive, got " + inputSize);
    }
  }

  /** Returns the pixel coordinate that maps to 0, S/2. */
  public double center() {
    return inputSize / 2.0;
  }

  /** Returns the pixel distance that maps to 1, S/2. */
  public double scale() {
    return inputSize / 2.0;
  }

  /**
   * Returns the normalized copy of pixel coordinates {@code pixels} (any length, x and y alike).
   */
  public double[] normalize(double[] pixels) {
    double center = center();
    double scale = scale();
    double[] normalized = new double[pixels.length];
    for (int i = 0; i < pixels.length; i++) {
      normalized[i] = (pixels[i] - center) / scale;
    }
    return normalized;
  }

  /** Returns the pixel coordinates of {@code normalized}; the inverse of {@link #normalize}. */
  public double[] denormalize(double[] normalized) {
    double center = center();
    double scale = scale();
    double[] pixels = new double[normalized.length];
    for (int i = 0; i < normalized.length; i++) {
      pixels[i] = normalized[i] * scale + center;
    }
    return pixels;
  }

  /** Returns the constants as checkpoint metadata entries, under the three keys above. */
  public Map<String, String> toMetadata() {
    return Map.of(
        INPUT_SIZE_KEY,
        Integer.toString(inputSize),
        CENTER_KEY,
        Double.toString(center()),
        SCALE_KEY,
        Double.toString(scale()));
  }

  /**
   * Restores the normalization from checkpoint metadata written by {@link #toMetadata}. Other
   * entries are ignored.
   *
   * @throws IllegalArgumentException if the input size is missing or not an integer, or if a stored
   *     centre or scale differs from S/2, which this class cannot represent
   */
  public static KeypointNormalization fromMetadata(Map<String, String> metadata) {
    String sizeText = metadata.get(INPUT_SIZE_KEY);
    if (sizeText == null) {
      throw new IllegalArgumentException(
          "checkpoint metadata has no "
              + INPUT_SIZE_KEY
              + " entry; keys present: "
              + metadata.keySet());
    }
    int size;
    try {
      size = Integer.parseInt(sizeText.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          INPUT_SIZE_KEY + " must be an integer, got '" + sizeText + "'", e);
    }

    KeypointNormalization normalization = new KeypointNormalization(size);
    requireStored(metadata, CENTER_KEY, normalization.center(), size);
    requireStored(metadata, SCALE_KEY, normalization.scale(), size);
    return normalization;
  }

  private static void requireStored(
      Map<String, String> metadata, String key, double expected, int size) {
    String text = metadata.get(key);
    if (text == null) {
      return;
    }
    double stored;
    try {
      stored = Double.parseDouble(text.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(key + " must be a number, got '" + text + "'", e);
    }
    if (stored != expected) {
      throw new IllegalArgumentException(
          key
              + " is "
              + stored
              + " but an input size of "
              + size
              + " needs "
              + expected
              + "; this checkpoint uses a normalization this version does not support");
    }
  }
}
