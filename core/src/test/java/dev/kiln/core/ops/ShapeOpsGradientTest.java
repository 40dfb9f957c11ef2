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

/** Gradient checks for the shape ops: views, permutations, slices, concatenation and expand. */
class ShapeOpsGradientTest {

  static Stream<Arguments> cases() {
    return Stream.of(
        single("reshape with -1", x -> x.reshape(5, -1), uniform(1, 3, 5, 7)),
        single("view", x -> x.view(7, 15), uniform(2, 3, 5, 7)),
        single("flatten all", Tensor::flatten, uniform(3, 3, 5, 7)),
        single("flatten dims 1 2", x -> x.flatten(1, 2), uniform(4, 3, 5, 7)),
        single("unsqueeze 0", x -> x.unsqueeze(0), uniform(5, 3, 5)),
        single("unsqueeze -1", x -> x.unsqueeze(-1), uniform(6, 3, 5)),
        single("squeeze 1", x -> x.squeeze(1), uniform(7, 3, 1, 5)),
        single("permute 3-D", x -> x.permute(2, 0, 1), uniform(8, 3, 5, 7)),
        single("permute 4-D", x -> x.permute(0, 3, 1, 2), uniform(9, 2, 3, 5, 7)),
        single("permute 4-D reversed", x -> x.permute(3, 2, 1, 0), uniform(10, 2, 3, 5, 7)),
        single("permute negative dims", x -> x.permute(-1, 0, -2), uniform(11, 3, 5, 7)),
        single("transpose 0 2", x -> x.transpose(0, 2), uniform(12, 3, 5, 7)),
        single("transpose -1 -2", x -> x.transpose(-1, -2), uniform(13, 1, 5, 7)),
        single("slice middle", x -> x.slice(1, 1, 4), uniform(14, 3, 5, 7)),
        single("slice negative bounds", x -> x.slice(2, -5, -1), uniform(15, 3, 5, 7)),
        single("slice clipped bounds", x -> x.slice(0, -10, 10), uniform(16, 3, 5, 7)),
        single("slice dim -1", x -> x.slice(-1, 2, 3), uniform(17, 3, 5, 7)),
        three(
            "cat dim 0",
            in -> Tensor.cat(0, in.get(0), in.get(1), in.get(2)),
            uniform(21, 1, 5),
            uniform(22, 3, 5),
            uniform(23, 2, 5)),
        three(
            "cat dim 1",
            in -> Tensor.cat(1, in.get(0), in.get(1), in.get(2)),
            uniform(24, 3, 2, 3),
            uniform(25, 3, 1, 3),
            uniform(26, 3, 4, 3)),
        three(
            "cat dim -1",
            in -> Tensor.cat(-1, in.get(0), in.get(1), in.get(2)),
            uniform(27, 3, 2),
            uniform(28, 3, 5),
            uniform(29, 3, 1)),
        single("expand [3, 1] to [2, 3, 4]", x -> x.expand(2, 3, 4), uniform(31, 3, 1)),
        single("expand [5] to [3, 5]", x -> x.expand(3, 5), uniform(32, 5)),
        single("expand scalar", x -> x.expand(2, 3), uniform(33)),
        single("expand same shape", x -> x.expand(3, 5), uniform(34, 3, 5)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void shapeOpGradientMatches(String name, Function<List<Tensor>, Tensor> op, Tensor[] inputs) {
    GradCheck.assertGradients(op, inputs);
  }

  private static Arguments single(String name, Function<Tensor, Tensor> op, Tensor x) {
    Function<List<Tensor>, Tensor> function = in -> op.apply(in.get(0));
    return Arguments.of(name, function, new Tensor[] {x});
  }

  private static Arguments three(
      String name, Function<List<Tensor>, Tensor> op, Tensor a, Tensor b, Tensor c) {
    return Arguments.of(name, op, new Tensor[] {a, b, c});
  }
}
