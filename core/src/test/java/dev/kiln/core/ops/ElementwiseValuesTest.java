package dev.kiln.core.ops;

import static dev.kiln.core.ops.Values.assertShape;
import static dev.kiln.core.ops.Values.assertValues;
import static dev.kiln.core.ops.Values.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Forward values of the elementwise ops against hand-computed results, in both dtypes. */
class ElementwiseValuesTest {

  @ParameterizedTest
  @EnumSource(DType.class)
  void addBroadcastsColumnAndRow(DType dtype) {
    Tensor column = tensor(dtype, new double[] {1, 2, 3}, 3, 1);
    Tensor row = tensor(dtype, new double[] {10, 20, 30, 40}, 1, 4);

    Tensor sum = column.add(row);

    assertShape(new int[] {3, 4}, sum);
    assertValues(new double[] {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}, sum);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void addBroadcastsTrailingVector(DType dtype) {
    Tensor matrix = tensor(dtype, new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
    Tensor vector = tensor(dtype, new double[] {10, 20, 30}, 3);

    assertValues(new double[] {11, 22, 33, 14, 25, 36}, matrix.add(vector));
    assertValues(new double[] {11, 22, 33, 14, 25, 36}, vector.add(matrix));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void subBroadcastsScalarTensor(DType dtype) {
    Tensor matrix = tensor(dtype, new double[] {1, 2, 3, 4}, 2, 2);
    Tensor scalar = Tensor.scalar(0.5, dtype);

    Tensor left = matrix.sub(scalar);
    Tensor right = scalar.sub(matrix);

    assertShape(new int[] {2, 2}, left);
    assertValues(new double[] {0.5, 1.5, 2.5, 3.5}, left);
    assertValues(new double[] {-0.5, -1.5, -2.5, -3.5}, right);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void mulBroadcastsToRank3(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 2, 3, 4}, 2, 1, 2);
    Tensor b = tensor(dtype, new double[] {10, 20, 30}, 3, 1);

    Tensor product = a.mul(b);

    assertShape(new int[] {2, 3, 2}, product);
    assertValues(new double[] {10, 20, 20, 40, 30, 60, 30, 40, 60, 80, 90, 120}, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void divBroadcastsColumn(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
    Tensor b = tensor(dtype, new double[] {2, 4}, 2, 1);

    assertValues(new double[] {0.5, 1, 1.5, 1, 1.25, 1.5}, a.div(b));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void scalarArithmeticValues(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, -2, 4}, 3);

    assertValues(new double[] {3.5, 0.5, 6.5}, x.add(2.5));
    assertValues(new double[] {-0.5, -3.5, 2.5}, x.sub(1.5));
    assertValues(new double[] {-3, 6, -12}, x.mul(-3));
    assertValues(new double[] {0.25, -0.5, 1}, x.div(4));
  }

  @Test
  void divScalarIsTrueDivisionFloat64() {
    Tensor x = Tensor.of(new double[] {5, 2.9, 0.1}, 3);

    double[] quotients = x.div(3.0).toDoubleArray();

    // Bitwise: 5 * (1 / 3.0) is one ulp below 5 / 3.0.
    assertEquals(5 / 3.0, quotients[0], 0.0);
    assertEquals(2.9 / 3.0, quotients[1], 0.0);
    assertEquals(0.1 / 3.0, quotients[2], 0.0);
  }

  @Test
  void divScalarIsTrueDivisionFloat32() {
    Tensor x = Tensor.of(new float[] {5f, 2.9f, 0.1f}, 3);

    float[] quotients = x.div(10.0).toFloatArray();

    assertEquals(5f / 10f, quotients[0], 0f);
    assertEquals(2.9f / 10f, quotients[1], 0f);
    assertEquals(0.1f / 10f, quotients[2], 0f);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void mathFunctionValues(DType dtype) {
    Tensor x = tensor(dtype, new double[] {0.25, 1, 4}, 3);

    assertValues(new double[] {-0.25, -1, -4}, x.neg());
    assertValues(new double[] {Math.exp(0.25), Math.E, Math.exp(4)}, x.exp());
    assertValues(new double[] {Math.log(0.25), 0, Math.log(4)}, x.log());
    assertValues(new double[] {0.5, 1, 2}, x.sqrt());
    assertValues(new double[] {0.0625, 1, 16}, x.pow(2));
    assertValues(new double[] {0.5, 1, 2}, x.pow(0.5));
    assertValues(new double[] {4, 1, 0.25}, x.pow(-1));
    assertValues(new double[] {0.015625, 1, 64}, x.pow(3));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void absAndClampValues(DType dtype) {
    Tensor x = tensor(dtype, new double[] {-2, -0.5, 0, 0.75, 3}, 5);

    assertValues(new double[] {2, 0.5, 0, 0.75, 3}, x.abs());
    assertValues(new double[] {-1, -0.5, 0, 0.75, 1}, x.clamp(-1, 1));
    assertValues(new double[] {0, 0, 0, 0, 0}, x.clamp(0, 0));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maximumBroadcastsRow(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 5, 3, 0}, 2, 2);
    Tensor b = tensor(dtype, new double[] {2, 2}, 2);

    assertValues(new double[] {2, 5, 3, 2}, a.maximum(b));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void activationValues(DType dtype) {
    Tensor x = tensor(dtype, new double[] {-2, -0.5, 0, 1.5}, 4);

    assertValues(new double[] {0, 0, 0, 1.5}, x.relu());
    assertValues(new double[] {-0.2, -0.05, 0, 1.5}, Elementwise.leakyRelu(x, 0.1));
    assertValues(new double[] {Math.expm1(-2), Math.expm1(-0.5), 0, 1.5}, Elementwise.elu(x, 1.0));
    assertValues(
        new double[] {0.5 * Math.expm1(-2), 0.5 * Math.expm1(-0.5), 0, 1.5},
        Elementwise.elu(x, 0.5));
    assertValues(new double[] {Math.tanh(-2), Math.tanh(-0.5), 0, Math.tanh(1.5)}, x.tanh());
    assertValues(
        new double[] {
          1 / (1 + Math.exp(2)), 1 / (1 + Math.exp(0.5)), 0.5, 1 / (1 + Math.exp(-1.5))
        },
        x.sigmoid());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sigmoidSaturatesWithoutNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {-800, 800}, 2);

    assertValues(new double[] {0, 1}, x.sigmoid());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maximumPicksNaN(DType dtype) {
    Tensor a = tensor(dtype, new double[] {Double.NaN, 1}, 2);
    Tensor b = tensor(dtype, new double[] {5, Double.NaN}, 2);

    double[] result = a.maximum(b).toDoubleArray();

    assertTrue(Double.isNaN(result[0]), "NaN on the left");
    assertTrue(Double.isNaN(result[1]), "NaN on the right");
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void reluKeepsNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {Double.NaN, -1}, 2);

    double[] result = x.relu().toDoubleArray();

    assertTrue(Double.isNaN(result[0]), "relu(NaN)");
    assertEquals(0.0, result[1], 0.0);
  }

  /** PyTorch zeroes ReLU's gradient only where the output is at most 0, so a NaN passes it. */
  @ParameterizedTest
  @EnumSource(DType.class)
  void reluPassesTheGradientAtNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {Double.NaN, -1, 2}, 3).requiresGrad(true);

    x.relu().backward(tensor(dtype, new double[] {3, 4, 5}, 3));

    assertValues(new double[] {3, 0, 5}, x.grad());
  }

  /** PyTorch's threshold_backward selects 0 at an input of at most 0, so a NaN gradient stops. */
  @ParameterizedTest
  @EnumSource(DType.class)
  void reluStopsNanGradientAtDeadInput(DType dtype) {
    Tensor x = tensor(dtype, new double[] {-1, 0, 2}, 3).requiresGrad(true);

    x.relu().backward(tensor(dtype, new double[] {Double.NaN, Double.POSITIVE_INFINITY, 5}, 3));

    assertValues(new double[] {0, 0, 5}, x.grad());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void clampKeepsNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {Double.NaN, 7}, 2);

    double[] result = x.clamp(-1, 1).toDoubleArray();

    assertTrue(Double.isNaN(result[0]), "clamp(NaN)");
    assertEquals(1.0, result[1], 0.0);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void powZeroGradientIsZero(DType dtype) {
    Tensor x = tensor(dtype, new double[] {0, 2}, 2).requiresGrad(true);

    x.pow(0).sum().backward();

    assertValues(new double[] {0, 0}, x.grad());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void kinkGradientsFollowPyTorch(DType dtype) {
    Tensor zero = tensor(dtype, new double[] {0}, 1).requiresGrad(true);
    Tensor bounds = tensor(dtype, new double[] {-1, 1}, 2).requiresGrad(true);

    assertValues(new double[] {0}, gradientOf(zero, zero.abs()));
    assertValues(new double[] {0}, gradientOf(zero, zero.relu()));
    assertValues(new double[] {0.1}, gradientOf(zero, Elementwise.leakyRelu(zero, 0.1)));
    assertValues(new double[] {0.5}, gradientOf(zero, Elementwise.elu(zero, 0.5)));
    assertValues(new double[] {1, 1}, gradientOf(bounds, bounds.clamp(-1, 1)));
  }

  @Test
  void toFloat32RoundsToNearest() {
    Tensor x = Tensor.of(new double[] {0.1, 1e-50, 1e300}, 3);

    Tensor converted = x.to(DType.FLOAT32);

    assertEquals(DType.FLOAT32, converted.dtype());
    assertEquals((double) 0.1f, converted.get(0), 0.0);
    assertEquals(0.0, converted.get(1), 0.0);
    assertEquals(Double.POSITIVE_INFINITY, converted.get(2), 0.0);
  }

  @Test
  void toSameDTypeReturnsSameTensor() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2);

    assertSame(x, x.to(DType.FLOAT64));
  }

  @Test
  void toFloat32GradientIsFloat64() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);

    x.to(DType.FLOAT32).mul(3).sum().backward();

    assertEquals(DType.FLOAT64, x.grad().dtype());
    assertValues(new double[] {3, 3}, x.grad());
  }

  /** Returns the gradient of sum(output) with respect to the leaf {@code x}, then clears it. */
  private static Tensor gradientOf(Tensor x, Tensor output) {
    output.sum().backward();
    Tensor grad = x.grad();
    x.zeroGrad();
    return grad;
  }
}
