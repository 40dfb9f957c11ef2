package dev.kiln.core.autograd;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.function.Function;

/**
 * Compares the gradients that autograd computes with central differences, in float64.
 *
 * <p>The function's output is reduced to the scalar {@code L = sum(output * r)} with a fixed random
 * {@code r}, so every output element takes part. For each input element x, the numeric derivative
 * is {@code (L(x + h) - L(x - h)) / 2h}. An element passes when the relative error {@code |a - n| /
 * (|a| + |n|)} is at most the tolerance, or the absolute difference {@code |a - n|} is below {@link
 * #ABSOLUTE_FLOOR} (both near zero, where relative error is meaningless).
 */
public final class GradCheck {
  /** Finite-difference step: small enough for the truncation error, large enough for rounding. */
  public static final double STEP = 1e-6;

  /** Maximum relative error that passes. */
  public static final double RELATIVE_TOLERANCE = 1e-6;

  /** Absolute differences below this are ignored. */
  public static final double ABSOLUTE_FLOOR = 1e-8;

  private GradCheck() {}

  /** The worst element found by a check. */
  public record Result(
      double maxRelativeError, int inputIndex, int element, double analytic, double numeric) {

    public boolean passed(double tolerance) {
      return maxRelativeError <= tolerance;
    }
  }

  /**
   * Checks every input that requires a gradient and throws {@link AssertionError} naming the worst
   * element when the relative error exceeds {@link #RELATIVE_TOLERANCE}.
   */
  public static void assertGradients(Function<List<Tensor>, Tensor> function, Tensor... inputs) {
    Result result = check(function, List.of(inputs));
    if (!result.passed(RELATIVE_TOLERANCE)) {
      throw new AssertionError(
          "gradient check failed for input "
              + result.inputIndex()
              + " (shape "
              + Shapes.format(inputs[result.inputIndex()].shape())
              + "), element "
              + result.element()
              + ": autograd gives "
              + result.analytic()
              + ", central differences give "
              + result.numeric()
              + ", relative error "
              + result.maxRelativeError());
    }
  }

  /** Runs the check and returns the worst element; see the class comment for the method. */
  public static Result check(Function<List<Tensor>, Tensor> function, List<Tensor> inputs) {
    for (Tensor input : inputs) {
      if (input.dtype() != DType.FLOAT64) {
        throw new IllegalArgumentException(
            "gradient checks need float64 inputs, got "
                + input.dtype()
                + ": float32 rounding swamps the finite differences");
      }
    }
    Tensor probe = function.apply(inputs);
    Tensor weights = randomLike(probe);

    for (Tensor input : inputs) {
      input.zeroGrad();
    }
    probe.backward(weights);

    Result worst = new Result(0, 0, -1, 0, 0);
    try (var _ = GradMode.noGrad()) {
      for (int i = 0; i < inputs.size(); i++) {
        Tensor input = inputs.get(i);
        if (!input.requiresGrad()) {
          continue;
        }
        Storage values = input.storage();
        for (int e = 0; e < values.size(); e++) {
          double original = values.get(e);
          values.set(e, original + STEP);
          double plus = weightedSum(function.apply(inputs), weights);
          values.set(e, original - STEP);
          double minus = weightedSum(function.apply(inputs), weights);
          values.set(e, original);

          double numeric = (plus - minus) / (2 * STEP);
          double analytic = input.grad() == null ? 0.0 : input.grad().storage().get(e);
          double difference = Math.abs(analytic - numeric);
          double relative =
              difference < ABSOLUTE_FLOOR
                  ? 0.0
                  : difference / (Math.abs(analytic) + Math.abs(numeric));
          if (relative > worst.maxRelativeError() || worst.element() < 0) {
            worst = new Result(relative, i, e, analytic, numeric);
          }
        }
      }
    }
    return worst;
  }

  private static Tensor randomLike(Tensor like) {
    Generator generator = new Generator(12345);
    Tensor weights = Tensor.zerosLike(like);
    for (int i = 0; i < weights.numel(); i++) {
      weights.storage().set(i, generator.nextDouble() * 2 - 1);
    }
    return weights;
  }

  private static double weightedSum(Tensor output, Tensor weights) {
    double sum = 0;
    for (int i = 0; i < output.numel(); i++) {
      sum += output.storage().get(i) * weights.storage().get(i);
    }
    return sum;
  }
}
