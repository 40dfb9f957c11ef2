package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class LossOpsTest {

  /** Tolerance for values computed in float64 by hand or by a second route. */
  private static final double EXACT = 1e-12;

  private static final int[][] ODD_SHAPES = {{3, 5}, {1, 7}, {2, 3, 4}};

  /**
   * Differences d = x − t in units of the loss's kink (β or w): both sides of 1, both signs, and at
   * least 0.1 away from 0 and ±1, far beyond the finite-difference step, so no element sits where
   * the derivative jumps.
   */
  private static final double[] DIFFERENCES = {
    -2.7, -1.3, -0.4, 0.3, 0.8, 1.6, 3.1, -0.15, 0.55, -0.9, 2.2, 0.12, -1.75
  };

  /** A loss under test, with the scale of its kink for {@link #DIFFERENCES}. */
  private record Case(String name, double kink, LossFunction loss) {
    @Override
    public String toString() {
      return name;
    }
  }

  @FunctionalInterface
  private interface LossFunction {
    Tensor apply(Tensor x, Tensor t, Reduction reduction);
  }

  private static final List<Case> CASES =
      List.of(
          new Case("mse", 1.0, LossOps::mseLoss),
          new Case("l1", 1.0, LossOps::l1Loss),
          new Case("smoothL1 beta=1", 1.0, (x, t, r) -> LossOps.smoothL1Loss(x, t, 1.0, r)),
          new Case("smoothL1 beta=0.5", 0.5, (x, t, r) -> LossOps.smoothL1Loss(x, t, 0.5, r)),
          new Case("wing w=10 eps=2", 10.0, (x, t, r) -> LossOps.wingLoss(x, t, 10, 2, r)),
          new Case("wing w=3 eps=0.5", 3.0, (x, t, r) -> LossOps.wingLoss(x, t, 3, 0.5, r)));

  static Stream<Arguments> gradientCases() {
    List<Arguments> cases = new ArrayList<>();
    for (Case loss : CASES) {
      for (Reduction reduction : Reduction.values()) {
        for (int[] shape : ODD_SHAPES) {
          cases.add(Arguments.of(loss, reduction, Shapes.format(shape), shape));
        }
      }
    }
    return cases.stream();
  }

  static Stream<Case> lossCases() {
    return CASES.stream();
  }

  /** Returns a float64 prediction of random values in [-1, 1). */
  private static Tensor randomPrediction(int[] shape, long seed) {
    Generator generator = new Generator(seed);
    Tensor x = Tensor.zeros(DType.FLOAT64, shape);
    for (int i = 0; i < x.numel(); i++) {
      x.storage().set(i, generator.nextDouble() * 2 - 1);
    }
    return x;
  }

  /** Returns x − d·kink, cycling through {@link #DIFFERENCES}, so that x − t is controlled. */
  private static Tensor targetAtDifferences(Tensor x, double kink) {
    Tensor t = Tensor.zerosLike(x);
    for (int i = 0; i < t.numel(); i++) {
      double d = DIFFERENCES[i % DIFFERENCES.length] * kink;
      t.storage().set(i, x.storage().get(i) - d);
    }
    return t;
  }

  // ---- Gradients -------------------------------------------------------------------------------

  @ParameterizedTest(name = "{0}, {1}, {2}")
  @MethodSource("gradientCases")
  void lossGradientsMatchCentralDifferences(
      Case loss, Reduction reduction, String shapeName, int[] shape) {
    Tensor x = randomPrediction(shape, 7).requiresGrad(true);
    Tensor t = targetAtDifferences(x, loss.kink()).requiresGrad(true);
    Function<List<Tensor>, Tensor> function =
        inputs -> loss.loss().apply(inputs.get(0), inputs.get(1), reduction);

    GradCheck.assertGradients(function, x, t);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lossCases")
  void targetGradientIsNegatedInputGradient(Case loss) {
    Tensor x = randomPrediction(new int[] {2, 5}, 3).requiresGrad(true);
    Tensor t = targetAtDifferences(x, loss.kink()).requiresGrad(true);

    loss.loss().apply(x, t, Reduction.MEAN).backward();

    double[] gradX = x.grad().toDoubleArray();
    double[] gradT = t.grad().toDoubleArray();
    for (int i = 0; i < gradX.length; i++) {
      assertEquals(-gradX[i], gradT[i], 0.0, "element " + i);
    }
  }

  @Test
  void gradientFlowsToTargetOnly() {
    Tensor x = Tensor.of(new double[] {1, 2, 3}, 3);
    Tensor t = Tensor.of(new double[] {0, 0, 5}, 3).requiresGrad(true);

    LossOps.mseLoss(x, t, Reduction.SUM).backward();

    assertNull(x.grad());
    assertArrayEquals(new double[] {-2, -4, 4}, t.grad().toDoubleArray(), EXACT);
  }

  @Test
  void upstreamGradientScalesGradient() {
    Tensor x = Tensor.of(new double[] {1, 2, 3}, 3).requiresGrad(true);
    Tensor t = Tensor.of(new double[] {0, 0, 5}, 3);

    LossOps.l1Loss(x, t, Reduction.MEAN).backward(Tensor.scalar(3.0, DType.FLOAT64));

    assertArrayEquals(new double[] {1, 1, -1}, x.grad().toDoubleArray(), EXACT);
  }

  @Test
  void lossWithoutGradientsRecordsNothing() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2);
    Tensor t = Tensor.of(new double[] {0, 0}, 2);

    Tensor loss = LossOps.mseLoss(x, t, Reduction.MEAN);

    assertFalse(loss.requiresGrad());
    assertNull(loss.gradFn());
  }

  // ---- Forward values --------------------------------------------------------------------------

  @Test
  void mseValuesByHand() {
    // d = [1, 2, -2], so d² = [1, 4, 4].
    Tensor x = Tensor.of(new double[] {1, 2, 3}, 3);
    Tensor t = Tensor.of(new double[] {0, 0, 5}, 3);

    assertEquals(9.0, LossOps.mseLoss(x, t, Reduction.SUM).item(), EXACT);
    assertEquals(3.0, LossOps.mseLoss(x, t, Reduction.MEAN).item(), EXACT);
  }

  @Test
  void l1ValuesByHand() {
    Tensor x = Tensor.of(new double[] {1, 2, 3}, 3);
    Tensor t = Tensor.of(new double[] {0, 0, 5}, 3);

    assertEquals(5.0, LossOps.l1Loss(x, t, Reduction.SUM).item(), EXACT);
    assertEquals(5.0 / 3, LossOps.l1Loss(x, t, Reduction.MEAN).item(), EXACT);
  }

  @Test
  void smoothL1ValuesByHand() {
    // d = [0.5, 2, -3] with β = 1: 0.5·0.25 = 0.125 inside the band, then 1.5 and 2.5 outside.
    Tensor x = Tensor.of(new double[] {0.5, 2, -3}, 3);
    Tensor t = Tensor.zeros(DType.FLOAT64, 3);

    assertEquals(4.125, LossOps.smoothL1Loss(x, t, 1.0, Reduction.SUM).item(), EXACT);
    assertEquals(1.375, LossOps.smoothL1Loss(x, t, 1.0, Reduction.MEAN).item(), EXACT);
  }

  @Test
  void smoothL1ValueWithSmallBeta() {
    // d = [0.1, -1] with β = 0.25: 0.5·0.01/0.25 = 0.02, then 1 − 0.125 = 0.875.
    Tensor x = Tensor.of(new double[] {0.1, -1}, 2);
    Tensor t = Tensor.zeros(DType.FLOAT64, 2);

    assertEquals(0.895, LossOps.smoothL1Loss(x, t, 0.25, Reduction.SUM).item(), EXACT);
  }

  @Test
  void wingValuesByHand() {
    // d = [2, -12] with w = 10, ε = 2: 10·ln(2) inside, 12 − (10 − 10·ln(6)) outside.
    Tensor x = Tensor.of(new double[] {2, -12}, 2);
    Tensor t = Tensor.zeros(DType.FLOAT64, 2);
    double expected = 2 + 10 * Math.log(12);

    assertEquals(expected, LossOps.wingLoss(x, t, 10, 2, Reduction.SUM).item(), EXACT);
    assertEquals(expected / 2, LossOps.wingLoss(x, t, 10, 2, Reduction.MEAN).item(), EXACT);
  }

  @Test
  void wingPiecesMeetAtW() {
    double w = 10;
    double epsilon = 2;
    Tensor t = Tensor.zeros(DType.FLOAT64, 1);
    Tensor below = Tensor.of(new double[] {w - 1e-9}, 1);
    Tensor at = Tensor.of(new double[] {w}, 1);

    double inside = LossOps.wingLoss(below, t, w, epsilon, Reduction.SUM).item();
    double outside = LossOps.wingLoss(at, t, w, epsilon, Reduction.SUM).item();

    assertEquals(inside, outside, 1e-8);
  }

  @Test
  void lossGradientsByHand() {
    // d = [0.5, 2, -3, 0]: the derivative of each loss at each d, written out.
    Tensor x = Tensor.of(new double[] {0.5, 2, -3, 0}, 4).requiresGrad(true);
    Tensor t = Tensor.zeros(DType.FLOAT64, 4);
    double[][] expected = {
      {1, 4, -6, 0},
      {1, 1, -1, 0},
      {0.5, 1, -1, 0},
      {10 / 2.5, 10 / 4.0, -10 / 5.0, 0}
    };
    List<Function<Tensor, Tensor>> losses =
        List.of(
            p -> LossOps.mseLoss(p, t, Reduction.SUM),
            p -> LossOps.l1Loss(p, t, Reduction.SUM),
            p -> LossOps.smoothL1Loss(p, t, 1.0, Reduction.SUM),
            p -> LossOps.wingLoss(p, t, 10, 2, Reduction.SUM));

    for (int i = 0; i < losses.size(); i++) {
      x.zeroGrad();
      losses.get(i).apply(x).backward();
      assertArrayEquals(expected[i], x.grad().toDoubleArray(), EXACT, "loss " + i);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lossCases")
  void meanIsSumOverElementCount(Case loss) {
    Tensor x = randomPrediction(new int[] {2, 3, 4}, 11);
    Tensor t = targetAtDifferences(x, loss.kink());

    double sum = loss.loss().apply(x, t, Reduction.SUM).item();
    double mean = loss.loss().apply(x, t, Reduction.MEAN).item();

    assertEquals(sum / 24, mean, EXACT * Math.abs(sum));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lossCases")
  void equalInputsGiveZeroLoss(Case loss) {
    Tensor x = randomPrediction(new int[] {3, 5}, 5).requiresGrad(true);
    Tensor t = x.detach().copy();

    Tensor value = loss.loss().apply(x, t, Reduction.MEAN);
    value.backward();

    assertEquals(0.0, value.item(), 0.0);
    assertArrayEquals(new double[15], x.grad().toDoubleArray(), 0.0);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lossCases")
  void lossIsScalarOfInputDType(Case loss) {
    Tensor x = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
    Tensor t = Tensor.of(new float[] {0, 1, 5, 4}, 2, 2);

    Tensor value = loss.loss().apply(x, t, Reduction.MEAN);

    assertArrayEquals(new int[0], value.shape());
    assertEquals(DType.FLOAT32, value.dtype());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("lossCases")
  void float32MatchesFloat64(Case loss) {
    Tensor x64 = randomPrediction(new int[] {4, 6}, 13).requiresGrad(true);
    Tensor t64 = targetAtDifferences(x64, loss.kink());
    Tensor x32 = x64.detach().to(DType.FLOAT32).requiresGrad(true);
    Tensor t32 = t64.to(DType.FLOAT32);

    Tensor value64 = loss.loss().apply(x64, t64, Reduction.MEAN);
    Tensor value32 = loss.loss().apply(x32, t32, Reduction.MEAN);
    value64.backward();
    value32.backward();

    assertEquals(value64.item(), value32.item(), 1e-5 * Math.abs(value64.item()));
    assertArrayEquals(x64.grad().toDoubleArray(), x32.grad().toDoubleArray(), 1e-5);
  }

  @Test
  void smoothL1WithZeroBetaIsL1() {
    Tensor x = randomPrediction(new int[] {3, 5}, 17).requiresGrad(true);
    Tensor t = targetAtDifferences(x, 1.0);

    Tensor smooth = LossOps.smoothL1Loss(x, t, 0.0, Reduction.MEAN);
    smooth.backward();
    double[] smoothGrad = x.grad().toDoubleArray();
    x.zeroGrad();
    Tensor l1 = LossOps.l1Loss(x, t, Reduction.MEAN);
    l1.backward();

    assertEquals(l1.item(), smooth.item(), 0.0);
    assertArrayEquals(x.grad().toDoubleArray(), smoothGrad, 0.0);
  }

  @Test
  void smoothL1ZeroBetaTieHasZeroGradient() {
    // L1's derivative at x == t. PyTorch 1.13 gives -0.25 at the two ties instead.
    Tensor x = Tensor.of(new double[] {0, 1, -1, 0}, 4).requiresGrad(true);
    Tensor t = Tensor.of(new double[] {0, 0, 0, 0}, 4);

    LossOps.smoothL1Loss(x, t, 0.0, Reduction.MEAN).backward();

    assertArrayEquals(new double[] {0, 0.25, -0.25, 0}, x.grad().toDoubleArray(), 0.0);
  }

  // ---- Argument checks -------------------------------------------------------------------------

  @Test
  void shapeMismatchShowsBothShapes() {
    Tensor x = Tensor.zeros(DType.FLOAT32, 32, 136);
    Tensor t = Tensor.zeros(DType.FLOAT32, 32, 68, 2);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> LossOps.mseLoss(x, t, Reduction.MEAN));

    String message = error.getMessage();
    assertTrue(message.contains("prediction [32, 136]"), message);
    assertTrue(message.contains("target [32, 68, 2]"), message);
    assertTrue(message.contains("reshape the target"), message);
  }

  @Test
  void shapeMismatchCountsElements() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 4, 3);
    Tensor t = Tensor.zeros(DType.FLOAT64, 1, 3);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> LossOps.l1Loss(x, t, Reduction.SUM));

    String message = error.getMessage();
    assertTrue(message.contains("prediction [4, 3] and target [1, 3]"), message);
    assertTrue(message.contains("12 and 3 elements"), message);
    assertTrue(message.contains("do not broadcast"), message);
  }

  @Test
  void dtypeMismatchNamesBothDTypes() {
    Tensor x = Tensor.zeros(DType.FLOAT32, 2, 3);
    Tensor t = Tensor.zeros(DType.FLOAT64, 2, 3);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> LossOps.smoothL1Loss(x, t, 1.0, Reduction.MEAN));

    String message = error.getMessage();
    assertTrue(message.contains("dtype mismatch"), message);
    assertTrue(message.contains("float32 [2, 3]"), message);
    assertTrue(message.contains("float64 [2, 3]"), message);
  }

  @Test
  void invalidBetaIsRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2);

    for (double beta : new double[] {-0.5, Double.NaN, Double.POSITIVE_INFINITY}) {
      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () -> LossOps.smoothL1Loss(x, x, beta, Reduction.MEAN),
              "beta " + beta);
      assertTrue(error.getMessage().contains("beta is " + beta), error.getMessage());
    }
  }

  @Test
  void invalidWingParametersAreRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2);
    double[][] invalid = {{0, 2}, {-1, 2}, {Double.NaN, 2}, {10, 0}, {10, -2}, {10, Double.NaN}};

    for (double[] parameters : invalid) {
      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () -> LossOps.wingLoss(x, x, parameters[0], parameters[1], Reduction.MEAN),
              "w " + parameters[0] + ", epsilon " + parameters[1]);
      assertTrue(error.getMessage().contains("must be a finite number > 0"), error.getMessage());
    }
  }

  @Test
  void nullReductionIsRejected() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2);

    NullPointerException error =
        assertThrows(NullPointerException.class, () -> LossOps.mseLoss(x, x, null));

    assertTrue(error.getMessage().contains("reduction is null"), error.getMessage());
  }

  @Test
  void emptyInputGivesNaNMeanAndZeroSum() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 0, 3);

    assertTrue(Double.isNaN(LossOps.mseLoss(x, x, Reduction.MEAN).item()));
    assertEquals(0.0, LossOps.mseLoss(x, x, Reduction.SUM).item(), 0.0);
  }
}
