package dev.kiln.core.ops;

import static dev.kiln.core.ops.TestInputs.uniform;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Gradient checks for sum, mean, max and variance. Random inputs make ties in max improbable, and
 * the fixed seeds make that hold on every run.
 */
class ReductionGradientTest {

  static Stream<Arguments> cases() {
    return Stream.of(
        reduce("sum all", Tensor::sum, uniform(1, 3, 5, 7)),
        reduce("sum dim 1", x -> x.sum(new int[] {1}, false), uniform(2, 3, 5, 7)),
        reduce("sum dim 1 keepDim", x -> x.sum(new int[] {1}, true), uniform(3, 3, 5, 7)),
        reduce("sum dims 0 2", x -> x.sum(new int[] {0, 2}, false), uniform(4, 3, 5, 7)),
        reduce("sum dims 0 2 keepDim", x -> x.sum(new int[] {0, 2}, true), uniform(5, 3, 5, 7)),
        reduce("sum dim -1", x -> x.sum(new int[] {-1}, false), uniform(6, 3, 5, 7)),
        reduce("sum dims -3 -1 keepDim", x -> x.sum(new int[] {-3, -1}, true), uniform(7, 3, 5, 7)),
        reduce("sum batch 1", x -> x.sum(new int[] {0}, false), uniform(8, 1, 5, 3)),
        reduce("mean all", Tensor::mean, uniform(11, 3, 5, 7)),
        reduce("mean dim 1", x -> x.mean(new int[] {1}, false), uniform(12, 3, 5, 7)),
        reduce("mean dim 1 keepDim", x -> x.mean(new int[] {1}, true), uniform(13, 3, 5, 7)),
        reduce("mean dims 0 2", x -> x.mean(new int[] {0, 2}, false), uniform(14, 3, 5, 7)),
        reduce("mean dims 2 0 keepDim", x -> x.mean(new int[] {2, 0}, true), uniform(15, 3, 5, 7)),
        reduce("mean dims -2 -1", x -> x.mean(new int[] {-2, -1}, false), uniform(16, 3, 5, 7)),
        reduce("max all", Tensor::max, uniform(21, 3, 5, 7)),
        reduce("max dim 0", x -> x.max(0, false).values(), uniform(22, 3, 5, 7)),
        reduce("max dim 1 keepDim", x -> x.max(1, true).values(), uniform(23, 3, 5, 7)),
        reduce("max dim -1", x -> x.max(-1, false).values(), uniform(24, 3, 5, 7)),
        reduce("max dim -1 keepDim", x -> x.max(-1, true).values(), uniform(25, 3, 5, 7)),
        reduce("max batch 1", x -> x.max(1, false).values(), uniform(26, 1, 5, 3)),
        reduce(
            "variance dim 1 unbiased",
            x -> x.variance(new int[] {1}, true, false),
            uniform(31, 3, 5, 7)),
        reduce(
            "variance dim 1 biased",
            x -> x.variance(new int[] {1}, false, false),
            uniform(32, 3, 5, 7)),
        reduce(
            "variance dims 0 2 keepDim",
            x -> x.variance(new int[] {0, 2}, true, true),
            uniform(33, 3, 5, 7)),
        reduce(
            "variance dim -1 biased keepDim",
            x -> x.variance(new int[] {-1}, false, true),
            uniform(34, 3, 5, 7)),
        reduce(
            "variance all dims",
            x -> x.variance(new int[] {0, 1, 2}, true, false),
            uniform(35, 3, 5, 7)),
        reduce(
            "variance batch 1", x -> x.variance(new int[] {2}, true, false), uniform(36, 1, 5, 3)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void reductionGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  private static Arguments reduce(String name, Function<Tensor, Tensor> op, Tensor x) {
    Function<List<Tensor>, Tensor> function = in -> op.apply(in.get(0));
    return Arguments.of(name, function, new Tensor[] {x});
  }
}
