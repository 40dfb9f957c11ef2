package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * Argument checks of the batch norm kernels. Each throws {@link IllegalArgumentException} that
 * names the argument and the size it expected.
 */
final class BatchNormChecks {

  private BatchNormChecks() {}

  static void requireActivation(String name, Storage storage, int n, int c, int s) {
    if (n < 1 || c < 1 || s < 1) {
      throw new IllegalArgumentException(
          "batch norm sizes must be positive, got n=" + n + ", c=" + c + ", s=" + s);
    }
    if (storage.size() != (long) n * c * s) {
      throw new IllegalArgumentException(
          "batch norm "
              + name
              + " has "
              + storage.size()
              + " elements, expected ["
              + n
              + ", "
              + c
              + ", "
              + s
              + "] = "
              + (long) n * c * s);
    }
  }

  static void requireChannels(String name, Storage storage, int c) {
    if (storage != null && storage.size() != c) {
      throw new IllegalArgumentException(
          "batch norm "
              + name
              + " has "
              + storage.size()
              + " elements, expected one per channel ("
              + c
              + ")");
    }
  }

  static void requireNonNullChannels(String name, Storage storage, int c) {
    if (storage == null) {
      throw new IllegalArgumentException(
          "batch norm " + name + " is missing: inference mode needs the running statistics");
    }
    requireChannels(name, storage, c);
  }

  static void requireLength(String name, double[] array, int c) {
    if (array.length != c) {
      throw new IllegalArgumentException(
          "batch norm "
              + name
              + " has length "
              + array.length
              + ", expected one per channel ("
              + c
              + ")");
    }
  }

  static void requireSameDtype(Storage first, Storage second) {
    if (first.dtype() != second.dtype()) {
      throw new IllegalArgumentException(
          "batch norm activations must share one dtype, got "
              + first.dtype()
              + " and "
              + second.dtype());
    }
  }
}
