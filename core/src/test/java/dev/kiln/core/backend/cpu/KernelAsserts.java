package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.Random;

/** Random inputs and tolerant comparisons shared by the kernel tests. */
final class KernelAsserts {

  /** Float64 kernels and references differ only in summation order, a few ulps. */
  static final double F64_TOLERANCE = 1e-12;

  /**
   * Float32 kernels accumulate sums of up to ~100 products in float, which round differently from
   * the float64 reference by about 1e-6 of the largest magnitude.
   */
  static final double F32_TOLERANCE = 1e-5;

  private KernelAsserts() {}

  static double tolerance(DType dtype) {
    return dtype == DType.FLOAT32 ? F32_TOLERANCE : F64_TOLERANCE;
  }

  /** Returns storage of normally distributed values; float32 rounds them on store. */
  static Storage randomStorage(DType dtype, int size, long seed) {
    Random random = new Random(seed);
    Storage storage = Storage.allocate(dtype, size);
    for (int i = 0; i < size; i++) {
      storage.set(i, random.nextGaussian());
    }
    return storage;
  }

  /** Returns storage filled with NaN, to prove that a kernel overwrites its output. */
  static Storage nanStorage(DType dtype, int size) {
    Storage storage = Storage.allocate(dtype, size);
    for (int i = 0; i < size; i++) {
      storage.set(i, Double.NaN);
    }
    return storage;
  }

  static double[] values(Storage storage) {
    double[] values = new double[storage.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = storage.get(i);
    }
    return values;
  }

  /**
   * Asserts that every element matches within {@code tolerance} times the largest magnitude of
   * {@code expected} (at least 1), because rounding error scales with the terms of a sum, not with
   * one result that may be close to zero.
   */
  static void assertAllClose(double[] expected, Storage actual, double tolerance, String what) {
    assertTrue(
        expected.length == actual.size(),
        what + ": expected " + expected.length + " elements, got " + actual.size());
    double scale = 1;
    for (double value : expected) {
      scale = Math.max(scale, Math.abs(value));
    }
    double allowed = tolerance * scale;
    for (int i = 0; i < expected.length; i++) {
      double error = Math.abs(actual.get(i) - expected[i]);
      int index = i;
      assertTrue(
          error <= allowed,
          () ->
              what
                  + "["
                  + index
                  + "]: expected "
                  + expected[index]
                  + ", got "
                  + actual.get(index)
                  + " (tolerance "
                  + allowed
                  + ")");
    }
  }

  static void assertAllClose(double[] expected, double[] actual, double tolerance, String what) {
    assertAllClose(expected, Storage.wrap(actual), tolerance, what);
  }
}
