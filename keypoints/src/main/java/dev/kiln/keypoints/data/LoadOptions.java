package dev.kiln.keypoints.data;

import dev.kiln.keypoints.data.FaceDataset.OnBadRow;

/**
 * Settings for {@link FaceDataset#load}. Start from {@link #defaults()} and change fields with the
 * {@code with} methods.
 *
 * @param onBadRow whether a bad row stops loading or is skipped and reported
 * @param minSize minimum width and height in pixels of the original image, usually the training
 *     crop size; smaller images are bad rows
 * @param shorterSide if positive, each image is rescaled right after decoding so that its shorter
 *     side has this many pixels, and its keypoints are scaled with it; 0 keeps the original size.
 *     Smaller images are enlarged, so a value above the typical image size raises memory use
 * @param maxOutsideFraction how far, as a fraction of the image width (for x) or height (for y), a
 *     keypoint may lie beyond the image edge before the row counts as bad
 * @param threads number of threads that decode images
 * @param limit maximum number of CSV data rows to read, good or bad
 */
public record LoadOptions(
    OnBadRow onBadRow,
    int minSize,
    int shorterSide,
    double maxOutsideFraction,
    int threads,
    int limit) {

  public LoadOptions {
    if (minSize < 1) {
      throw new IllegalArgumentException("minSize must be at least 1 pixel, got " + minSize);
    }
    if (shorterSide < 0) {
      throw new IllegalArgumentException(
          "shorterSide must be 0 (keep) or positive: " + shorterSide);
    }
    if (shorterSide > 0 && shorterSide < minSize) {
      throw new IllegalArgumentException(
          "shorterSide "
              + shorterSide
              + " is below minSize "
              + minSize
              + ", so no rescaled image could hold the crop; raise shorterSide");
    }
    if (!(maxOutsideFraction >= 0)) {
      throw new IllegalArgumentException(
          "maxOutsideFraction must be 0 or more, got " + maxOutsideFraction);
    }
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be at least 1, got " + threads);
    }
    if (limit < 1) {
      throw new IllegalArgumentException("limit must be at least 1 row, got " + limit);
    }
  }

  /**
   * Returns the defaults: fail on the first bad row, no minimum size, no rescaling, keypoints at
   * most 50% of the image size beyond an edge, one thread per available processor, all rows.
   */
  public static LoadOptions defaults() {
    return new LoadOptions(
        OnBadRow.FAIL, 1, 0, 0.5, Runtime.getRuntime().availableProcessors(), Integer.MAX_VALUE);
  }

  /** Returns a copy with another bad-row policy. */
  public LoadOptions withOnBadRow(OnBadRow value) {
    return new LoadOptions(value, minSize, shorterSide, maxOutsideFraction, threads, limit);
  }

  /** Returns a copy with another minimum image size in pixels. */
  public LoadOptions withMinSize(int value) {
    return new LoadOptions(onBadRow, value, shorterSide, maxOutsideFraction, threads, limit);
  }

  /** Returns a copy that rescales images to this shorter side in pixels, or 0 to keep them. */
  public LoadOptions withShorterSide(int value) {
    return new LoadOptions(onBadRow, minSize, value, maxOutsideFraction, threads, limit);
  }

  /** Returns a copy with another tolerance for keypoints beyond the image edge. */
  public LoadOptions withMaxOutsideFraction(double value) {
    return new LoadOptions(onBadRow, minSize, shorterSide, value, threads, limit);
  }

  /** Returns a copy with another number of decoding threads. */
  public LoadOptions withThreads(int value) {
    return new LoadOptions(onBadRow, minSize, shorterSide, maxOutsideFraction, value, limit);
  }

  /** Returns a copy that reads at most this many CSV data rows. */
  public LoadOptions withLimit(int value) {
    return new LoadOptions(onBadRow, minSize, shorterSide, maxOutsideFraction, threads, value);
  }
}
