package dev.kiln.core.ops;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/**
 * Deterministic float64 inputs for gradient checks. Every tensor requires a gradient, and the value
 * ranges keep the inputs away from the kinks and poles of the ops under test.
 */
final class TestInputs {
  private TestInputs() {}

  /** Returns a tensor of values uniform in [-1, 1). */
  static Tensor uniform(long seed, int... shape) {
    Generator generator = new Generator(seed);
    double[] values = new double[Shapes.numel(shape)];
    for (int i = 0; i < values.length; i++) {
      values[i] = generator.nextDouble() * 2 - 1;
    }
    return Tensor.of(values, shape).requiresGrad(true);
  }

  /** Returns magnitudes in [0.2, 1) with random signs, so that relu, abs and 1/x are smooth. */
  static Tensor awayFromZero(long seed, int... shape) {
    Generator generator = new Generator(seed);
    double[] values = new double[Shapes.numel(shape)];
    for (int i = 0; i < values.length; i++) {
      double magnitude = 0.2 + 0.8 * generator.nextDouble();
      values[i] = generator.nextDouble() < 0.5 ? -magnitude : magnitude;
    }
    return Tensor.of(values, shape).requiresGrad(true);
  }

  /** Returns values in [0.5, 2), for log, sqrt, fractional powers and divisors. */
  static Tensor positive(long seed, int... shape) {
    Generator generator = new Generator(seed);
    double[] values = new double[Shapes.numel(shape)];
    for (int i = 0; i < values.length; i++) {
      values[i] = 0.5 + 1.5 * generator.nextDouble();
    }
    return Tensor.of(values, shape).requiresGrad(true);
  }

  /** Returns a float64 leaf with the given values that requires a gradient. */
  static Tensor leaf(double[] values, int... shape) {
    return Tensor.of(values, shape).requiresGrad(true);
  }
}
