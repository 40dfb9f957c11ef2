package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.util.function.BinaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Invalid arguments: each error is an IllegalArgumentException that shows the offending values. */
class OpErrorsTest {

  static Stream<Arguments> binaryOps() {
    return Stream.of(
        Arguments.of("add", (BinaryOperator<Tensor>) Tensor::add),
        Arguments.of("sub", (BinaryOperator<Tensor>) Tensor::sub),
        Arguments.of("mul", (BinaryOperator<Tensor>) Tensor::mul),
        Arguments.of("div", (BinaryOperator<Tensor>) Tensor::div),
        Arguments.of("maximum", (BinaryOperator<Tensor>) Tensor::maximum));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("binaryOps")
  void binaryShapeMismatchNamesShapes(String name, BinaryOperator<Tensor> op) {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 4, 5);

    String message = messageOf(() -> op.apply(a, b));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4, 5]"), message);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("binaryOps")
  void binaryDTypeMismatchNamesDTypes(String name, BinaryOperator<Tensor> op) {
    Tensor a = Tensor.zeros(DType.FLOAT32, 2);
    Tensor b = Tensor.zeros(DType.FLOAT64, 2);

    String message = messageOf(() -> op.apply(a, b));

    assertTrue(message.contains("float32"), message);
    assertTrue(message.contains("float64"), message);
  }

  @Test
  void broadcastMismatchInnerDimNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3, 4);
    Tensor b = Tensor.zeros(DType.FLOAT64, 3, 3);

    String message = messageOf(() -> a.add(b));

    assertTrue(message.contains("[2, 3, 4]"), message);
    assertTrue(message.contains("[3, 3]"), message);
  }

  @Test
  void matmulChainMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 4, 5);

    String message = messageOf(() -> a.matmul(b));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4, 5]"), message);
  }

  @Test
  void matmulVectorMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 4, 5);

    String message = messageOf(() -> a.matmul(b));

    assertTrue(message.contains("[3]"), message);
    assertTrue(message.contains("[4, 5]"), message);
  }

  @Test
  void matmulMatrixVectorMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 4);

    String message = messageOf(() -> a.matmul(b));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4]"), message);
  }

  @Test
  void matmulBatchMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3, 4);
    Tensor b = Tensor.zeros(DType.FLOAT64, 5, 4, 2);

    String message = messageOf(() -> a.matmul(b));

    assertTrue(message.contains("[2, 3, 4]"), message);
    assertTrue(message.contains("[5, 4, 2]"), message);
  }

  @Test
  void matmulDTypeMismatchNamesDTypes() {
    Tensor a = Tensor.zeros(DType.FLOAT32, 2, 2);
    Tensor b = Tensor.zeros(DType.FLOAT64, 2, 2);

    String message = messageOf(() -> a.matmul(b));

    assertTrue(message.contains("float32"), message);
    assertTrue(message.contains("float64"), message);
  }

  @Test
  void linearInputMismatchNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor weight = Tensor.zeros(DType.FLOAT64, 5, 4);

    String message = messageOf(() -> MatMul.linear(x, weight, null));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[5, 4]"), message);
  }

  @Test
  void linearBiasMismatchNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 4);
    Tensor weight = Tensor.zeros(DType.FLOAT64, 5, 4);
    Tensor bias = Tensor.zeros(DType.FLOAT64, 3);

    String message = messageOf(() -> MatMul.linear(x, weight, bias));

    assertTrue(message.contains("[3]"), message);
    assertTrue(message.contains("[5, 4]"), message);
  }

  @Test
  void reshapeSizeMismatchNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.reshape(4, 5));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4, 5]"), message);
  }

  @Test
  void reshapeIndivisibleMinusOneNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.reshape(4, -1));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4, -1]"), message);
  }

  @Test
  void reshapeTwoMinusOnesRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.reshape(-1, -1));

    assertTrue(message.contains("[-1, -1]"), message);
  }

  @Test
  void permuteRepeatedDimRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3, 4);

    String message = messageOf(() -> x.permute(0, 1, 1));

    assertTrue(message.contains("[0, 1, 1]"), message);
    assertTrue(message.contains("[2, 3, 4]"), message);
  }

  @Test
  void permuteWrongCountNamesShape() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3, 4);

    String message = messageOf(() -> x.permute(1, 0));

    assertTrue(message.contains("[1, 0]"), message);
    assertTrue(message.contains("[2, 3, 4]"), message);
  }

  static Stream<Arguments> badDims() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);
    return Stream.of(
        badDim("sum", "3", () -> x.sum(new int[] {3}, false)),
        badDim("mean", "-3", () -> x.mean(new int[] {-3}, true)),
        badDim("variance", "2", () -> x.variance(new int[] {2}, true, false)),
        badDim("max", "5", () -> x.max(5, false)),
        badDim("slice", "2", () -> x.slice(2, 0, 1)),
        badDim("cat", "-4", () -> Tensor.cat(-4, x, x)),
        badDim("permute", "7", () -> x.permute(0, 7)),
        badDim("transpose", "2", () -> x.transpose(0, 2)),
        badDim("unsqueeze", "4", () -> x.unsqueeze(4)),
        badDim("squeeze", "-3", () -> x.squeeze(-3)),
        badDim("flatten", "2", () -> x.flatten(0, 2)),
        badDim("size", "2", () -> x.size(2)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badDims")
  void outOfRangeDimNamesDimAndShape(String op, String dim, Executable call) {
    String message = messageOf(call);

    assertTrue(message.contains("dimension " + dim), message);
    assertTrue(message.contains("[2, 3]"), message);
  }

  @Test
  void repeatedReductionDimRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.sum(new int[] {1, -1}, false));

    assertTrue(message.contains("[2, 3]"), message);
  }

  @Test
  void squeezeOfNonUnitDimRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.squeeze(1));

    assertTrue(message.contains("[2, 3]"), message);
  }

  @Test
  void catShapeMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 2, 4);

    String message = messageOf(() -> Tensor.cat(0, a, b));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[2, 4]"), message);
  }

  @Test
  void catRankMismatchNamesShapes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT64, 3);

    String message = messageOf(() -> Tensor.cat(0, a, b));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[3]"), message);
  }

  @Test
  void catDTypeMismatchNamesDTypes() {
    Tensor a = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor b = Tensor.zeros(DType.FLOAT32, 2, 3);

    String message = messageOf(() -> Tensor.cat(1, a, b));

    assertTrue(message.contains("float32"), message);
    assertTrue(message.contains("float64"), message);
  }

  @Test
  void expandMismatchNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    String message = messageOf(() -> x.expand(4, 5));

    assertTrue(message.contains("[2, 3]"), message);
    assertTrue(message.contains("[4, 5]"), message);
  }

  @Test
  void expandToLowerRankNamesShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 1, 3);

    String message = messageOf(() -> x.expand(3));

    assertTrue(message.contains("[1, 3]"), message);
    assertTrue(message.contains("[3]"), message);
  }

  @Test
  void clampMinAboveMaxRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2);

    String message = messageOf(() -> x.clamp(1, -1));

    assertTrue(message.contains("1.0"), message);
    assertTrue(message.contains("-1.0"), message);
  }

  private static Arguments badDim(String op, String dim, Executable call) {
    return Arguments.of(op, dim, call);
  }

  private static String messageOf(Executable call) {
    return assertThrows(IllegalArgumentException.class, call).getMessage();
  }
}
