package dev.kiln.nn.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/**
 * Comparison of kiln's results with the PyTorch float64 references, and the tolerances for it.
 *
 * <p>The error is relative to the largest reference value: {@code max|a - e| / max|e|}. An
 * elementwise ratio would blow up on entries near zero, which sums of products with mixed signs
 * produce in every layer.
 */
public final class Parity {
  /**
   * Float64 runs differ from PyTorch's only in the order of summation, a few ulps on sums of tens
   * of terms.
   */
  public static final double FLOAT64_TOLERANCE = 1e-9;

  /** Float32 keeps about 7 digits, and sums of a few hundred terms lose two or three of them. */
  public static final double FLOAT32_TOLERANCE = 1e-4;

  /**
   * Devices other than the CPU compute in float32 too, so the float32 bound applies unchanged.
   * Their kernels may sum in another order than the CPU, and on a GPU nvcc fuses a * b + c into one
   * rounding. Either changes a rounding error of the same size as the CPU's float32 run has, which
   * 1e-4 already bounds.
   */
  public static final double DEVICE_TOLERANCE = FLOAT32_TOLERANCE;

  private Parity() {}

  /** Returns the tolerance for a run in {@code dtype} on the CPU. */
  public static double tolerance(DType dtype) {
    return dtype == DType.FLOAT64 ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
  }

  /** Returns the tolerance for a run in {@code dtype} on {@code device}. */
  public static double tolerance(DType dtype, Device device) {
    return device.isCpu() ? tolerance(dtype) : DEVICE_TOLERANCE;
  }

  /**
   * Returns {@code max|a - e| / max|e|} (or the absolute error where e is all zero). A tensor on a
   * device is copied to the CPU first.
   */
  public static double relativeError(Tensor actual, Tensor expected) {
    if (!actual.device().isCpu()) {
      actual = actual.detach().to(Device.CPU);
    }
    double maxDifference = 0;
    double maxExpected = 0;
    for (int i = 0; i < expected.numel(); i++) {
      double e = expected.storage().get(i);
      maxDifference = Math.max(maxDifference, Math.abs(actual.storage().get(i) - e));
      maxExpected = Math.max(maxExpected, Math.abs(e));
    }
    if (Double.isNaN(maxDifference)) {
      return Double.POSITIVE_INFINITY;
    }
    return maxExpected == 0 ? maxDifference : maxDifference / maxExpected;
  }

  /**
   * Asserts equal shapes and a relative error within the tolerance of the actual dtype and device.
   */
  public static void assertClose(String what, Tensor actual, Tensor expected) {
    assertArrayEquals(
        expected.shape(),
        actual.shape(),
        what
            + ": shape "
            + Shapes.format(actual.shape())
            + " but expected "
            + Shapes.format(expected.shape()));
    double error = relativeError(actual, expected);
    double tolerance = tolerance(actual.dtype(), actual.device());
    assertTrue(
        error <= tolerance,
        what
            + " ("
            + actual.dtype()
            + " on "
            + actual.device()
            + "): relative error "
            + error
            + " exceeds "
            + tolerance);
  }
}
