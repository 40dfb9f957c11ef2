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

/** Gradient checks for matmul (plain, batched, broadcast, 1-D) and the fused linear map. */
class MatMulGradientTest {

  static Stream<Arguments> cases() {
    return Stream.of(
        matmul("matmul 2-D", uniform(1, 3, 4), uniform(2, 4, 5)),
        matmul("matmul batched 3-D", uniform(3, 2, 3, 4), uniform(4, 2, 4, 5)),
        matmul("matmul broadcast batch", uniform(5, 2, 1, 3, 4), uniform(6, 5, 4, 2)),
        matmul("matmul 3-D x 2-D", uniform(7, 1, 3, 4), uniform(8, 4, 2)),
        matmul("matmul 1-D x 2-D", uniform(9, 4), uniform(10, 4, 5)),
        matmul("matmul 2-D x 1-D", uniform(11, 3, 4), uniform(12, 4)),
        matmul("matmul 1-D x 3-D", uniform(13, 4), uniform(14, 2, 4, 3)),
        matmul("matmul 3-D x 1-D", uniform(15, 2, 3, 4), uniform(16, 4)),
        matmul("matmul 1-D x 1-D", uniform(17, 5), uniform(18, 5)),
        linear("linear 2-D with bias", uniform(21, 3, 4), uniform(22, 5, 4), uniform(23, 5)),
        linear("linear 2-D without bias", uniform(24, 3, 4), uniform(25, 5, 4), null),
        linear("linear 3-D with bias", uniform(26, 2, 3, 4), uniform(27, 5, 4), uniform(28, 5)),
        linear("linear 3-D without bias", uniform(29, 2, 3, 4), uniform(30, 5, 4), null),
        linear("linear batch 1", uniform(31, 1, 4), uniform(32, 3, 4), uniform(33, 3)),
        linear("linear 1-D input", uniform(34, 4), uniform(35, 3, 4), uniform(36, 3)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void matmulGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  private static Arguments matmul(String name, Tensor a, Tensor b) {
    Function<List<Tensor>, Tensor> function = in -> in.get(0).matmul(in.get(1));
    return Arguments.of(name, function, new Tensor[] {a, b});
  }

  private static Arguments linear(String name, Tensor x, Tensor weight, Tensor bias) {
    if (bias == null) {
      Function<List<Tensor>, Tensor> function = in -> MatMul.linear(in.get(0), in.get(1), null);
      return Arguments.of(name, function, new Tensor[] {x, weight});
    }
    Function<List<Tensor>, Tensor> function = in -> MatMul.linear(in.get(0), in.get(1), in.get(2));
    return Arguments.of(name, function, new Tensor[] {x, weight, bias});
  }
}
