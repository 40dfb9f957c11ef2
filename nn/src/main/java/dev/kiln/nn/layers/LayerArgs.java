package dev.kiln.nn.layers;

import java.util.Arrays;

/** Validation and formatting of the {height, width} pairs that 2-D layers take. */
final class LayerArgs {
  private LayerArgs() {}

  /** Returns a copy of a two-element pair after checking each value is at least {@code min}. */
  static int[] pair(String name, int[] values, int min) {
    if (values.length != 2) {
      throw new IllegalArgumentException(
          name + " needs two values {height, width}, got " + Arrays.toString(values));
    }
    for (int value : values) {
      if (value < min) {
        throw new IllegalArgumentException(
            name + " values must be at least " + min + ", got " + Arrays.toString(values));
      }
    }
    return values.clone();
  }

  /** Formats a pair as PyTorch prints it: {@code (3, 3)}. */
  static String format(int[] pair) {
    return "(" + pair[0] + ", " + pair[1] + ")";
  }
}
