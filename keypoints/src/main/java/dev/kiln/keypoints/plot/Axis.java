package dev.kiln.keypoints.plot;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * The scale of one plot axis, which maps values to a fraction of the axis length. Ticks sit at
 * round numbers: 1, 2 or 5 times a power of ten on a linear axis, powers of ten on a log axis.
 */
final class Axis {
  /** A tick mark; {@code label} is null for an unlabeled minor tick. */
  record Tick(double value, String label) {}

  private static final int TARGET_TICKS = 6;

  private final double min;
  private final double max;
  private final boolean log;
  private final List<Tick> ticks;

  private Axis(double min, double max, boolean log, List<Tick> ticks) {
    this.min = min;
    this.max = max;
    this.log = log;
    this.ticks = List.copyOf(ticks);
  }

  /**
   * Returns a linear axis over [min, max]. With {@code roundOut}, the ends move outwards to the
   * nearest ticks, which suits a y axis. An empty range widens around its value.
   */
  static Axis linear(double min, double max, boolean roundOut) {
    if (min == max) {
      double pad = min == 0 ? 1 : Math.abs(min) * 0.1;
      min -= pad;
      max += pad;
    }
    double step = roundStep((max - min) / TARGET_TICKS);
    if (roundOut) {
      min = Math.floor(min / step + 1e-9) * step;
      max = Math.ceil(max / step - 1e-9) * step;
    }
    List<Tick> ticks = new ArrayList<>();
    long first = (long) Math.ceil(min / step - 1e-9);
    long last = (long) Math.floor(max / step + 1e-9);
    for (long i = first; i <= last; i++) {
      double value = i * step;
      ticks.add(new Tick(value, format(value, step)));
    }
    return new Axis(min, max, false, ticks);
  }

  /**
   * Returns a base-10 log axis from the power of ten at or below {@code min} to the one at or above
   * {@code max}. Spans of up to two decades also label 2 and 5 times each power of ten.
   */
  static Axis log(double min, double max) {
    if (!(min > 0) || !(max > 0)) {
      throw new IllegalArgumentException(
          "a log axis needs positive bounds, got [" + min + ", " + max + "]");
    }
    int low = (int) Math.floor(Math.log10(min) + 1e-9);
    int high = (int) Math.ceil(Math.log10(max) - 1e-9);
    if (high == low) {
      high++;
    }
    boolean labelHalves = high - low <= 2;
    List<Tick> ticks = new ArrayList<>();
    for (int exponent = low; exponent <= high; exponent++) {
      double decade = Math.pow(10, exponent);
      ticks.add(new Tick(decade, formatPower(exponent)));
      if (exponent == high) {
        break;
      }
      for (int multiple = 2; multiple <= 9; multiple++) {
        double value = multiple * decade;
        boolean labeled = labelHalves && (multiple == 2 || multiple == 5);
        ticks.add(new Tick(value, labeled ? formatMultiple(multiple, exponent) : null));
      }
    }
    return new Axis(Math.pow(10, low), Math.pow(10, high), true, ticks);
  }

  /** Returns the position of {@code value} as a fraction of the axis, 0 at min and 1 at max. */
  double fraction(double value) {
    if (log) {
      return (Math.log10(value) - Math.log10(min)) / (Math.log10(max) - Math.log10(min));
    }
    return (value - min) / (max - min);
  }

  List<Tick> ticks() {
    return ticks;
  }

  double min() {
    return min;
  }

  double max() {
    return max;
  }

  /** Returns 1, 2 or 5 times a power of ten, the smallest such value at or above {@code raw}. */
  static double roundStep(double raw) {
    double magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    double normalized = raw / magnitude;
    if (normalized <= 1 + 1e-9) {
      return magnitude;
    }
    if (normalized <= 2 + 1e-9) {
      return 2 * magnitude;
    }
    if (normalized <= 5 + 1e-9) {
      return 5 * magnitude;
    }
    return 10 * magnitude;
  }

  /** Formats a tick value with as many decimals as the step needs, the same for every tick. */
  static String format(double value, double step) {
    double magnitude = Math.max(Math.abs(value), step);
    if (magnitude >= 1e6 || step < 1e-4) {
      return String.format(java.util.Locale.ROOT, "%.2g", value);
    }
    int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
    return new BigDecimal(value)
        .setScale(decimals, java.math.RoundingMode.HALF_EVEN)
        .toPlainString();
  }

  private static String formatPower(int exponent) {
    if (exponent >= -4 && exponent <= 5) {
      return new BigDecimal(1).scaleByPowerOfTen(exponent).toPlainString();
    }
    return "1e" + exponent;
  }

  private static String formatMultiple(int multiple, int exponent) {
    if (exponent >= -4 && exponent <= 5) {
      return new BigDecimal(multiple).scaleByPowerOfTen(exponent).toPlainString();
    }
    return multiple + "e" + exponent;
  }
}
