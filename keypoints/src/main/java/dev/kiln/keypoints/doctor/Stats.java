package dev.kiln.keypoints.doctor;

import java.util.Locale;

/**
 * Summary statistics of a set of values.
 *
 * @param count number of values
 * @param mean arithmetic mean
 * @param std population standard deviation
 * @param min smallest value
 * @param max largest value
 */
record Stats(long count, double mean, double std, double min, double max) {

  /** Returns the statistics of {@code values}; NaN statistics for an empty array. */
  static Stats of(float[] values) {
    double sum = 0;
    double min = Double.POSITIVE_INFINITY;
    double max = Double.NEGATIVE_INFINITY;
    for (float v : values) {
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    double mean = sum / values.length;
    double squares = 0;
    for (float v : values) {
      squares += (v - mean) * (v - mean);
    }
    return new Stats(values.length, mean, Math.sqrt(squares / values.length), min, max);
  }

  /** Returns the L2 norm of {@code values}. */
  static double norm(float[] values) {
    double sum = 0;
    for (float v : values) {
      sum += (double) v * v;
    }
    return Math.sqrt(sum);
  }

  /** Formats a number with 3 significant digits. */
  static String format(double value) {
    return String.format(Locale.ROOT, "%.3g", value);
  }

  /** Returns {@code n} and {@code noun}, with an "s" unless n is 1: "1 layer", "3 layers". */
  static String count(int n, String noun) {
    return n + " " + (n == 1 ? noun : noun + "s");
  }

  /** Formats a share as a percentage with one decimal. */
  static String percent(double share) {
    return String.format(Locale.ROOT, "%.1f%%", 100 * share);
  }

  @Override
  public String toString() {
    return "mean "
        + format(mean)
        + ", std "
        + format(std)
        + ", range ["
        + format(min)
        + ", "
        + format(max)
        + "]";
  }
}
