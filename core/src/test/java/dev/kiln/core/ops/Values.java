package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;

/** Builders and assertions for forward-value tests that run in both dtypes. */
final class Values {
  /**
   * Absolute tolerance for float64 results: the expected values are the same double expressions, so
   * only a different summation order may differ, by a few ulps of numbers below 1000.
   */
  static final double FLOAT64_TOLERANCE = 1e-12;

  /**
   * Absolute tolerance for float32 results: each op rounds once to float32, whose relative
   * precision is 6e-8, and the test values stay below 100.
   */
  static final double FLOAT32_TOLERANCE = 1e-5;

  private Values() {}

  /** Returns a tensor of the given dtype with the given values; it records no graph. */
  static Tensor tensor(DType dtype, double[] values, int... shape) {
    return Tensor.of(values, shape).to(dtype);
  }

  /** Returns 0, 1, 2, ... in the given shape. */
  static Tensor arange(DType dtype, int... shape) {
    Tensor t = Tensor.zeros(dtype, shape);
    for (int i = 0; i < t.numel(); i++) {
      t.storage().set(i, i);
    }
    return t;
  }

  static double tolerance(DType dtype) {
    return dtype == DType.FLOAT64 ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
  }

  /** Asserts the values, in row-major order, within the dtype's tolerance. */
  static void assertValues(double[] expected, Tensor actual) {
    assertArrayEquals(
        expected, actual.toDoubleArray(), tolerance(actual.dtype()), actual.toString());
  }

  /** Asserts the shape. */
  static void assertShape(int[] expected, Tensor actual) {
    assertArrayEquals(expected, actual.shape(), actual.toString());
  }
}
