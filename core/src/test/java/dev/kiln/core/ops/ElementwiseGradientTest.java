package dev.kiln.core.ops;

import static dev.kiln.core.ops.TestInputs.awayFromZero;
import static dev.kiln.core.ops.TestInputs.leaf;
import static dev.kiln.core.ops.TestInputs.positive;
import static dev.kiln.core.ops.TestInputs.uniform;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BinaryOperator;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Gradient checks for the elementwise ops: arithmetic with broadcasting, math and activations. */
class ElementwiseGradientTest {

  /** Operand shape pairs: equal, broadcast both ways, a batch of 1, and a scalar on each side. */
  private static final int[][][] SHAPE_PAIRS = {
    {{2, 3}, {2, 3}},
    {{3, 1}, {1, 4}},
    {{2, 3, 4}, {4}},
    {{4}, {2, 3, 4}},
    {{1, 5}, {3, 5}},
    {{3, 1, 5}, {1, 5}},
    {{}, {2, 3}},
    {{2, 3}, {}},
  };

  static Stream<Arguments> binaryCases() {
    List<Arguments> cases = new ArrayList<>();
    long seed = 1;
    for (int[][] pair : SHAPE_PAIRS) {
      String shapes = Shapes.format(pair[0]) + " x " + Shapes.format(pair[1]);
      cases.add(
          binary("add " + shapes, Tensor::add, uniform(seed++, pair[0]), uniform(seed++, pair[1])));
      cases.add(
          binary("sub " + shapes, Tensor::sub, uniform(seed++, pair[0]), uniform(seed++, pair[1])));
      cases.add(
          binary("mul " + shapes, Tensor::mul, uniform(seed++, pair[0]), uniform(seed++, pair[1])));
      // Divisors stay in [0.5, 2) so 1/y is smooth.
      cases.add(
          binary(
              "div " + shapes, Tensor::div, uniform(seed++, pair[0]), positive(seed++, pair[1])));
    }
    // maximum has a kink where x == y; random inputs keep the pairs far apart.
    cases.add(
        binary("maximum same shape", Tensor::maximum, uniform(101, 3, 5), uniform(102, 3, 5)));
    cases.add(
        binary("maximum [3, 1] x [1, 4]", Tensor::maximum, uniform(103, 3, 1), uniform(104, 1, 4)));
    cases.add(
        binary("maximum scalar", Tensor::maximum, uniform(105, 2, 3), leaf(new double[] {0.05})));
    return cases.stream();
  }

  static Stream<Arguments> scalarCases() {
    return Stream.of(
        unary("add scalar", x -> x.add(2.5), uniform(201, 3, 5)),
        unary("sub scalar", x -> x.sub(1.5), uniform(202, 3, 5)),
        unary("mul scalar", x -> x.mul(-3.0), uniform(203, 3, 5)),
        unary("div scalar", x -> x.div(4.0), uniform(204, 3, 5)),
        unary("div scalar batch 1", x -> x.div(-0.7), uniform(205, 1, 5)));
  }

  static Stream<Arguments> unaryCases() {
    return Stream.of(
        unary("neg", Tensor::neg, uniform(301, 3, 5)),
        unary("exp", Tensor::exp, uniform(302, 3, 5)),
        unary("log", Tensor::log, positive(303, 3, 5)),
        unary("sqrt", Tensor::sqrt, positive(304, 3, 5)),
        unary("pow 2", x -> x.pow(2), uniform(305, 3, 5)),
        unary("pow 0.5", x -> x.pow(0.5), positive(306, 3, 5)),
        unary("pow -1", x -> x.pow(-1), awayFromZero(307, 3, 5)),
        unary("pow 3", x -> x.pow(3), uniform(308, 3, 5)),
        unary("abs", Tensor::abs, awayFromZero(309, 3, 5)),
        // Values inside, below and above the bounds, none within 0.05 of them.
        unary(
            "clamp",
            x -> x.clamp(-0.5, 0.5),
            leaf(new double[] {-0.9, -0.55, -0.3, 0.0, 0.2, 0.45, 0.6, 1.3, -2.0}, 3, 3)),
        unary("relu", Tensor::relu, awayFromZero(310, 3, 5)),
        unary("leakyRelu", x -> Elementwise.leakyRelu(x, 0.1), awayFromZero(311, 3, 5)),
        unary("elu alpha 1", x -> Elementwise.elu(x, 1.0), awayFromZero(312, 3, 5)),
        unary("elu alpha 0.5", x -> Elementwise.elu(x, 0.5), awayFromZero(313, 3, 5)),
        unary("tanh", Tensor::tanh, uniform(314, 3, 5)),
        unary("sigmoid", Tensor::sigmoid, uniform(315, 3, 5).mul(4).detach().requiresGrad(true)),
        unary("relu batch 1", Tensor::relu, awayFromZero(316, 1, 7)),
        unary("to float64 same dtype", x -> x.to(DType.FLOAT64).mul(2), uniform(317, 3, 5)),
        // Inputs are 0 because x + h and x - h then round to float32 symmetrically. Away from 0 the
        // float32 rounding error is as large as the step and swamps the central difference.
        unary(
            "to float32 and back",
            x -> x.to(DType.FLOAT32).to(DType.FLOAT64),
            Tensor.zeros(DType.FLOAT64, 2, 3).requiresGrad(true)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("binaryCases")
  void binaryOpGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("scalarCases")
  void scalarOpGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("unaryCases")
  void unaryOpGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  private static Arguments binary(String name, BinaryOperator<Tensor> op, Tensor x, Tensor y) {
    Function<List<Tensor>, Tensor> function = in -> op.apply(in.get(0), in.get(1));
    return Arguments.of(name, function, new Tensor[] {x, y});
  }

  private static Arguments unary(String name, Function<Tensor, Tensor> op, Tensor x) {
    Function<List<Tensor>, Tensor> function = in -> op.apply(in.get(0));
    return Arguments.of(name, function, new Tensor[] {x});
  }
}
