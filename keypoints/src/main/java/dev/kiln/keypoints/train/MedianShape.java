package dev.kiln.keypoints.train;

import java.util.Arrays;

/**
 * The per-coordinate median of the targets of the first {@link #MAX_FACES} faces added: the shape
 * that a model which ignores the image learns under L1 loss, as {@link MeanShape} is under MSE.
 *
 * <p>A median needs the targets themselves, not a running sum, so this keeps them, but only those
 * of the first {@value #MAX_FACES} faces. That covers the first epoch of the full training set
 * (about 2,700 faces after the validation split) and takes at most 2.2 MB for 136 coordinates. On
 * that set the faces beyond it come from later epochs, which are new augmentations of the same
 * faces with targets from the same distribution, so the median of the faces kept estimates theirs
 * as well. On a training set of more than 4,096 faces, the faces kept are those that the shuffled
 * first epoch visits first, a random sample of the set, and their median estimates the set's.
 */
public final class MedianShape {
  /** Faces whose targets are kept. */
  public static final int MAX_FACES = 4096;

  private float[] values;
  private int width;
  private int faces;

  /** Keeps the targets of {@code batch}, one row per face, while fewer than MAX_FACES are kept. */
  public void add(Batch batch) {
    // Once full, return before copying the targets, because the trainer calls this every step.
    int newFaces = Math.min(batch.size(), MAX_FACES - faces);
    if (newFaces <= 0) {
      return;
    }
    float[] rows = batch.targets().toFloatArray();
    if (values == null) {
      width = rows.length / batch.size();
      values = new float[0];
    }
    int needed = (faces + newFaces) * width;
    if (needed > values.length) {
      // Doubling keeps the copies linear in the number of values kept.
      values =
          Arrays.copyOf(values, Math.max(needed, Math.min(2 * values.length, MAX_FACES * width)));
    }
    System.arraycopy(rows, 0, values, faces * width, newFaces * width);
    faces += newFaces;
  }

  /**
   * Returns the median target of the faces kept, one value per coordinate, or null before the first
   * batch. For an even number of faces it is the mean of the two middle values.
   */
  public float[] median() {
    if (faces == 0) {
      return null;
    }
    float[] median = new float[width];
    float[] column = new float[faces];
    for (int j = 0; j < width; j++) {
      for (int i = 0; i < faces; i++) {
        column[i] = values[i * width + j];
      }
      Arrays.sort(column);
      int middle = faces / 2;
      median[j] =
          faces % 2 == 1
              ? column[middle]
              : (float) (((double) column[middle - 1] + column[middle]) / 2);
    }
    return median;
  }
}
