package dev.kiln.keypoints.data;

/**
 * One face: its image and its 68 keypoints as 136 numbers x0, y0, x1, y1, ..., in the pixel
 * coordinates of {@code image} (see {@link GrayImage} for the convention). {@code name} is the
 * image's file name, which identifies the sample in messages.
 */
public record Sample(String name, GrayImage image, double[] keypoints) {
  /** Number of keypoints per face. */
  public static final int POINTS = 68;

  public Sample {
    if (keypoints.length != 2 * POINTS) {
      throw new IllegalArgumentException(
          name + ": expected " + 2 * POINTS + " keypoint coordinates, got " + keypoints.length);
    }
  }

  /** Returns the x coordinate of point {@code i}. */
  public double x(int i) {
    return keypoints[2 * i];
  }

  /** Returns the y coordinate of point {@code i}. */
  public double y(int i) {
    return keypoints[2 * i + 1];
  }

  /** Returns a sample with another image and keypoints but the same name. */
  public Sample with(GrayImage newImage, double[] newKeypoints) {
    return new Sample(name, newImage, newKeypoints);
  }
}
