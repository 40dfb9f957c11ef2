package dev.kiln.keypoints.train;

/**
 * The mean of the targets of the batches added so far, one value per coordinate: the shape that a
 * model which ignores the image learns under MSE loss. {@link ConstantShapes} pairs it with the
 * median, which such a model learns under L1 loss.
 */
public final class MeanShape {
  private double[] sums;
  private long faces;

  /** Adds the targets of {@code batch}, one row per face. */
  public void add(Batch batch) {
    float[] values = batch.targets().toFloatArray();
    int width = values.length / batch.size();
    if (sums == null) {
      sums = new double[width];
    }
    for (int i = 0; i < values.length; i++) {
      sums[i % width] += values[i];
    }
    faces += batch.size();
  }

  /** Returns the mean target of the faces added so far, or null before the first batch. */
  public float[] mean() {
    if (faces == 0) {
      return null;
    }
    float[] mean = new float[sums.length];
    for (int j = 0; j < mean.length; j++) {
      mean[j] = (float) (sums[j] / faces);
    }
    return mean;
  }
}
