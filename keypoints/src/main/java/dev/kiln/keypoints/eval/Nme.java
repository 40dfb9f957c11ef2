package dev.kiln.keypoints.eval;

import dev.kiln.keypoints.data.Sample;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * Normalized mean error of one face: the mean Euclidean distance between predicted and true
 * keypoints, divided by the inter-ocular distance of the truth, which is the distance between the
 * outer eye corners, points 36 and 45. {@code value} covers all 68 points and {@code byRegion} each
 * {@link Region}, with the same normalization.
 */
public record Nme(String name, double value, Map<Region, Double> byRegion) {
  /** Index of the outer corner of the eye on the image's left (the subject's right eye). */
  public static final int LEFT_OUTER_EYE_CORNER = 36;

  /** Index of the outer corner of the eye on the image's right (the subject's left eye). */
  public static final int RIGHT_OUTER_EYE_CORNER = 45;

  public Nme {
    EnumMap<Region, Double> copy = new EnumMap<>(Region.class);
    copy.putAll(byRegion);
    if (copy.size() != Region.values().length) {
      throw new IllegalArgumentException(name + ": an NME needs a value for every region");
    }
    byRegion = Collections.unmodifiableMap(copy);
  }

  /** Computes the NME of {@code predicted} against the keypoints of {@code truth}. */
  public static Nme of(Sample truth, double[] predicted) {
    return of(truth.name(), predicted, truth.keypoints());
  }

  /**
   * Computes the NME of one face from two arrays of 136 coordinates x0, y0, ..., x67, y67 in
   * pixels.
   *
   * @param name identifies the face in error messages and reports
   * @throws IllegalArgumentException if an array does not have 136 finite values, or if points 36
   *     and 45 of {@code truth} coincide, which makes the NME undefined
   */
  public static Nme of(String name, double[] predicted, double[] truth) {
    checkCoordinates(name, "predicted", predicted);
    checkCoordinates(name, "true", truth);

    double interOcular = distance(truth, LEFT_OUTER_EYE_CORNER, truth, RIGHT_OUTER_EYE_CORNER);
    if (interOcular == 0) {
      throw new IllegalArgumentException(
          name
              + ": the NME is undefined because the outer eye corners (points 36 and 45) of the"
              + " true keypoints coincide at ("
              + truth[2 * LEFT_OUTER_EYE_CORNER]
              + ", "
              + truth[2 * LEFT_OUTER_EYE_CORNER + 1]
              + "); check this sample's labels");
    }

    double[] pointErrors = new double[Sample.POINTS];
    double total = 0;
    for (int i = 0; i < Sample.POINTS; i++) {
      pointErrors[i] = distance(predicted, i, truth, i);
      total += pointErrors[i];
    }

    EnumMap<Region, Double> regions = new EnumMap<>(Region.class);
    for (Region region : Region.values()) {
      double sum = 0;
      for (int i = region.first(); i <= region.last(); i++) {
        sum += pointErrors[i];
      }
      regions.put(region, sum / region.size() / interOcular);
    }
    double value = total / Sample.POINTS / interOcular;
    if (!Double.isFinite(value)) {
      throw new IllegalArgumentException(
          name
              + ": the NME overflows because the outer eye corners (points 36 and 45) are only "
              + interOcular
              + " pixels apart; check this sample's labels");
    }
    return new Nme(name, value, regions);
  }

  /** Returns the NME of the points of {@code region}. */
  public double region(Region region) {
    return byRegion.get(region);
  }

  private static void checkCoordinates(String name, String role, double[] coordinates) {
    if (coordinates.length != 2 * Sample.POINTS) {
      throw new IllegalArgumentException(
          name
              + ": expected "
              + 2 * Sample.POINTS
              + " "
              + role
              + " keypoint coordinates, got "
              + coordinates.length);
    }
    for (int i = 0; i < coordinates.length; i++) {
      if (!Double.isFinite(coordinates[i])) {
        throw new IllegalArgumentException(
            name
                + ": the "
                + role
                + " "
                + (i % 2 == 0 ? "x" : "y")
                + " coordinate of point "
                + i / 2
                + " is "
                + coordinates[i]
                + ", expected a finite number");
      }
    }
  }

  private static double distance(double[] a, int pointA, double[] b, int pointB) {
    double dx = a[2 * pointA] - b[2 * pointB];
    double dy = a[2 * pointA + 1] - b[2 * pointB + 1];
    return Math.hypot(dx, dy);
  }
}
