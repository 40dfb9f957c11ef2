package dev.kiln.keypoints.transform;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.List;

/** Batches samples of one square size into float32 tensors for the network. */
public final class ToTensor {
  private ToTensor() {}

  /**
   * Returns the images as a float32 tensor of shape [N, 1, S, S], in list order.
   *
   * @throws IllegalArgumentException if the list is empty or an image is not S × S, where S is the
   *     first image's width
   */
  public static Tensor images(List<Sample> samples) {
    int side = requireSquareBatch(samples);
    int plane = side * side;
    float[] values = new float[samples.size() * plane];
    for (int n = 0; n < samples.size(); n++) {
      System.arraycopy(samples.get(n).image().pixels(), 0, values, n * plane, plane);
    }
    return Tensor.of(values, samples.size(), 1, side, side);
  }

  /**
   * Returns the keypoints normalized with {@code normalization} as a float32 tensor of shape [N,
   * 136], in the order x0, y0, x1, y1, ...
   *
   * @throws IllegalArgumentException if the list is empty or an image is not S × S, where S is the
   *     normalization's input size
   */
  public static Tensor keypoints(List<Sample> samples, KeypointNormalization normalization) {
    int side = requireSquareBatch(samples);
    if (side != normalization.inputSize()) {
      throw new IllegalArgumentException(
          "images are "
              + side
              + "x"
              + side
              + " but the keypoint normalization is for a "
              + normalization.inputSize()
              + "x"
              + normalization.inputSize()
              + " input");
    }

    int width = 2 * Sample.POINTS;
    float[] values = new float[samples.size() * width];
    for (int n = 0; n < samples.size(); n++) {
      double[] normalized = normalization.normalize(samples.get(n).keypoints());
      for (int i = 0; i < width; i++) {
        values[n * width + i] = (float) normalized[i];
      }
    }
    return Tensor.of(values, samples.size(), width);
  }

  /** Returns the common side S of the batch's images, raising if any differs or is not square. */
  private static int requireSquareBatch(List<Sample> samples) {
    if (samples.isEmpty()) {
      throw new IllegalArgumentException("cannot batch an empty list of samples");
    }
    int side = samples.getFirst().image().width();
    for (Sample sample : samples) {
      GrayImage image = sample.image();
      if (image.width() != side || image.height() != side) {
        throw new IllegalArgumentException(
            sample.name()
                + ": image is "
                + image.width()
                + "x"
                + image.height()
                + " but the batch needs "
                + side
                + "x"
                + side
                + " images, as the first sample "
                + samples.getFirst().name()
                + " has; crop every sample to the same square size");
      }
    }
    return side;
  }
}
