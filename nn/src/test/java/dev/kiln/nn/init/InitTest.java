package dev.kiln.nn.init;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init.Nonlinearity;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Linear;
import org.junit.jupiter.api.Test;

/**
 * Checks each initializer's range and spread against its formula, on tensors large enough that the
 * sample statistics are within a few percent of the true ones.
 */
class InitTest {
  /** Relative tolerance on a sample standard deviation from about 100 000 draws. */
  private static final double STD_TOLERANCE = 0.02;

  private static Tensor weight(int... shape) {
    return Tensor.zeros(DType.FLOAT64, shape);
  }

  private static double max(Tensor t) {
    double m = 0;
    for (double v : t.toDoubleArray()) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  private static double std(Tensor t) {
    double[] v = t.toDoubleArray();
    double mean = 0;
    for (double x : v) {
      mean += x / v.length;
    }
    double sum = 0;
    for (double x : v) {
      sum += (x - mean) * (x - mean);
    }
    return Math.sqrt(sum / v.length);
  }

  private static void assertStd(double expected, Tensor t) {
    double actual = std(t);
    assertTrue(
        Math.abs(actual - expected) <= STD_TOLERANCE * expected,
        "standard deviation " + actual + " but expected " + expected);
  }

  @Test
  void fansOfConvWeight() {
    Tensor w = weight(32, 16, 5, 3);

    assertEquals(16 * 15, Init.fanIn(w));
    assertEquals(32 * 15, Init.fanOut(w));
  }

  @Test
  void fanOfVectorIsRejected() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Init.fanIn(weight(7)));

    assertTrue(error.getMessage().contains("[7]"), error.getMessage());
  }

  @Test
  void xavierUniformBoundAndSpread() {
    Tensor w = Init.xavierUniform(weight(400, 300), 1.0, new Generator(1));
    double bound = Math.sqrt(6.0 / 700);

    assertTrue(max(w) <= bound);
    assertStd(bound / Math.sqrt(3), w);
  }

  @Test
  void xavierNormalSpread() {
    Tensor w = Init.xavierNormal(weight(400, 300), 2.0, new Generator(2));

    assertStd(2.0 * Math.sqrt(2.0 / 700), w);
  }

  @Test
  void kaimingUniformReluBound() {
    Tensor w = Init.kaimingUniform(weight(100, 64, 4, 4), Nonlinearity.RELU, 0, new Generator(3));
    double bound = Math.sqrt(2.0) * Math.sqrt(3.0 / (64 * 16));

    assertTrue(max(w) <= bound);
    assertStd(bound / Math.sqrt(3), w);
  }

  @Test
  void kaimingNormalReluSpread() {
    Tensor w = Init.kaimingNormal(weight(300, 400), Nonlinearity.RELU, 0, new Generator(4));

    assertStd(Math.sqrt(2.0 / 400), w);
  }

  @Test
  void gainsMatchPyTorch() {
    assertEquals(1.0, Nonlinearity.LINEAR.gain(0));
    assertEquals(5.0 / 3.0, Nonlinearity.TANH.gain(0));
    assertEquals(Math.sqrt(2.0), Nonlinearity.RELU.gain(0));
    assertEquals(Math.sqrt(2.0 / 1.0001), Nonlinearity.LEAKY_RELU.gain(0.01), 1e-15);
  }

  /** PyTorch's default gives weight and bias of Linear and Conv2d the bound 1/sqrt(fanIn). */
  @Test
  void linearDefaultMatchesPyTorchBound() {
    Linear layer = new Linear(500, 200, true, DType.FLOAT64, new Generator(5));
    double bound = 1 / Math.sqrt(500);

    assertTrue(max(layer.weight()) <= bound);
    assertTrue(max(layer.bias()) <= bound);
    assertStd(bound / Math.sqrt(3), layer.weight());
  }

  @Test
  void convDefaultMatchesPyTorchBound() {
    Conv2d layer =
        new Conv2d(
            32,
            64,
            new int[] {5, 5},
            new int[] {1, 1},
            new int[] {0, 0},
            new int[] {1, 1},
            true,
            DType.FLOAT64,
            new Generator(6));
    double bound = 1 / Math.sqrt(32 * 25);

    assertTrue(max(layer.weight()) <= bound);
    assertTrue(max(layer.bias()) <= bound);
    assertStd(bound / Math.sqrt(3), layer.weight());
  }

  @Test
  void sameSeedSameWeights() {
    Tensor a = Init.xavierUniform(weight(10, 10), 1.0, new Generator(9));
    Tensor b = Init.xavierUniform(weight(10, 10), 1.0, new Generator(9));

    assertEquals(
        java.util.Arrays.toString(a.toDoubleArray()), java.util.Arrays.toString(b.toDoubleArray()));
  }
}
