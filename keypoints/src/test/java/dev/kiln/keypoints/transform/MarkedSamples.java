package dev.kiln.keypoints.transform;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/**
 * Synthetic samples for the geometric tests: a black image with small squares of value 1 whose
 * centres are the keypoints, and a check that after a transform each keypoint still sits on the
 * brightness centroid of its mark.
 */
final class MarkedSamples {

  /**
   * Largest distance, per axis, between a transformed keypoint and the measured centroid of its
   * mark. Bilinear and area sampling blur a mark by about a pixel, and where the blurred mark falls
   * on the pixel grid shifts its centroid by a fraction of a pixel: at most 0.17 px in these tests.
   * The bound stays below 0.5 px, the shift that a half-pixel error in the coordinate convention
   * causes at a 2× scale.
   */
  static final double CENTROID_TOLERANCE_PX = 0.3;

  /**
   * Smallest brightness mass (sum of values above the window minimum) that counts as a mark. The
   * smallest mark in these tests, 2×2 shrunk 3×, keeps a mass of 4/9, and an empty window has 0.
   */
  static final double MIN_MARK_MASS = 0.3;

  /**
   * Top-left pixels of marks on a 120×90 image: the four corners, the top edge, and five interior
   * spots at irregular positions. Marks are at least 20 px apart.
   */
  static final int[][] SPREAD_MARKS = {
    {1, 1}, {116, 1}, {1, 86}, {116, 86}, {58, 2}, {30, 44}, {90, 30}, {70, 70}, {15, 60}, {100, 55}
  };

  /**
   * Top-left pixels of marks on a 120×90 image that stay at least 5 px inside the frame under a
   * rotation of ±10° with a scale of up to 1.1 about the centre: four marks 20 px in from the
   * corners and four interior ones.
   */
  static final int[][] INNER_MARKS = {
    {19, 14}, {99, 14}, {19, 74}, {99, 74}, {58, 43}, {40, 30}, {75, 55}, {45, 62}
  };

  private MarkedSamples() {}

  /**
   * Returns a black {@code width × height} image with a {@code markSize × markSize} square of value
   * 1 at each top-left pixel in {@code marks}. Keypoint i is the centre of mark {@code i mod
   * marks.length}, so every one of the 68 points sits on a mark.
   */
  static Sample markedSample(int width, int height, int[][] marks, int markSize) {
    GrayImage image = GrayImage.blank(width, height);
    for (int[] mark : marks) {
      for (int dy = 0; dy < markSize; dy++) {
        for (int dx = 0; dx < markSize; dx++) {
          image.set(mark[0] + dx, mark[1] + dy, 1f);
        }
      }
    }

    double[] keypoints = new double[2 * Sample.POINTS];
    for (int i = 0; i < Sample.POINTS; i++) {
      int[] mark = marks[i % marks.length];
      keypoints[2 * i] = mark[0] + markSize / 2.0;
      keypoints[2 * i + 1] = mark[1] + markSize / 2.0;
    }
    return new Sample("marked-" + width + "x" + height, image, keypoints);
  }

  /**
   * Returns {x, y, mass} of the brightness centroid over pixels whose centres lie within {@code
   * radius} of (x, y) on both axes, clipped to the image. Values are taken above the window's
   * minimum, so a uniform background offset, as brightness changes leave, does not pull the
   * centroid toward the window centre.
   */
  static double[] centroid(GrayImage image, double x, double y, double radius) {
    int firstX = Math.max(0, (int) Math.ceil(x - radius - 0.5));
    int lastX = Math.min(image.width() - 1, (int) Math.floor(x + radius - 0.5));
    int firstY = Math.max(0, (int) Math.ceil(y - radius - 0.5));
    int lastY = Math.min(image.height() - 1, (int) Math.floor(y + radius - 0.5));

    float minimum = Float.MAX_VALUE;
    for (int py = firstY; py <= lastY; py++) {
      for (int px = firstX; px <= lastX; px++) {
        minimum = Math.min(minimum, image.get(px, py));
      }
    }

    double mass = 0;
    double sumX = 0;
    double sumY = 0;
    for (int py = firstY; py <= lastY; py++) {
      for (int px = firstX; px <= lastX; px++) {
        double weight = image.get(px, py) - minimum;
        mass += weight;
        sumX += weight * (px + 0.5);
        sumY += weight * (py + 0.5);
      }
    }
    return new double[] {sumX / mass, sumY / mass, mass};
  }

  /**
   * Asserts that every keypoint at least {@code margin} px inside the frame, so that its whole mark
   * lies in the image, sits on the centroid of the window of half-width {@code radius} around it
   * within {@link #CENTROID_TOLERANCE_PX}. Returns how many keypoints it checked.
   */
  static int assertMarksOnKeypoints(Sample sample, double radius, double margin, String context) {
    GrayImage image = sample.image();
    int checked = 0;
    for (int i = 0; i < Sample.POINTS; i++) {
      double x = sample.x(i);
      double y = sample.y(i);
      boolean inside =
          x >= margin && y >= margin && x <= image.width() - margin && y <= image.height() - margin;
      if (!inside) {
        continue;
      }

      double[] found = centroid(image, x, y, radius);
      String where = context + ", point " + i + " at (" + x + ", " + y + ")";
      assertTrue(found[2] >= MIN_MARK_MASS, where + ": no mark, mass " + found[2]);
      assertEquals(x, found[0], CENTROID_TOLERANCE_PX, where + ": centroid x");
      assertEquals(y, found[1], CENTROID_TOLERANCE_PX, where + ": centroid y");
      checked++;
    }
    return checked;
  }
}
