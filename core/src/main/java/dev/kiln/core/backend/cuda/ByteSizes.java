package dev.kiln.core.backend.cuda;

import java.util.Locale;

/** Formats byte counts for messages: {@code 512 B}, {@code 1.50 MiB}, {@code 80.00 GiB}. */
final class ByteSizes {

  private ByteSizes() {}

  /** Returns {@code bytes} in the largest binary unit that keeps the number at 1 or more. */
  static String format(long bytes) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = bytes;
    int unit = 0;
    while (Math.abs(value) >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    if (unit == 0) {
      return bytes + " B";
    }
    return String.format(Locale.ROOT, "%.2f %s", value, units[unit]);
  }
}
