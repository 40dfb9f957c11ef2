package dev.kiln.core.ops;

import static dev.kiln.core.ops.Values.assertShape;
import static dev.kiln.core.ops.Values.assertValues;
import static dev.kiln.core.ops.Values.tensor;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Forward values of matmul and linear, in both dtypes. */
class MatMulValuesTest {
  private static final double[] A = {1, 2, 3, 4, 5, 6};
  private static final double[] B = {7, 8, 9, 10, 11, 12};

  @ParameterizedTest
  @EnumSource(DType.class)
  void matmul2DValues(DType dtype) {
    Tensor product = tensor(dtype, A, 2, 3).matmul(tensor(dtype, B, 3, 2));

    assertShape(new int[] {2, 2}, product);
    assertValues(new double[] {58, 64, 139, 154}, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void matmulVectorTimesMatrix(DType dtype) {
    Tensor product = tensor(dtype, new double[] {1, 2, 3}, 3).matmul(tensor(dtype, B, 3, 2));

    assertShape(new int[] {2}, product);
    assertValues(new double[] {58, 64}, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void matmulMatrixTimesVector(DType dtype) {
    Tensor product = tensor(dtype, A, 2, 3).matmul(tensor(dtype, new double[] {1, 0, -1}, 3));

    assertShape(new int[] {2}, product);
    assertValues(new double[] {-2, -2}, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void matmulVectorDotProduct(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 2, 3}, 3);
    Tensor b = tensor(dtype, new double[] {4, 5, 6}, 3);

    Tensor product = a.matmul(b);

    assertShape(new int[] {}, product);
    assertValues(new double[] {32}, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void matmulBroadcastsBatchDims(DType dtype) {
    // a[0] is the identity and a[1] twice the identity, so out[i, j] = (i + 1) * b[j].
    Tensor a = tensor(dtype, new double[] {1, 0, 0, 1, 2, 0, 0, 2}, 2, 1, 2, 2);
    double[] bValues = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    Tensor b = tensor(dtype, bValues, 3, 2, 2);

    Tensor product = a.matmul(b);

    assertShape(new int[] {2, 3, 2, 2}, product);
    double[] expected = new double[24];
    for (int i = 0; i < 24; i++) {
      expected[i] = (i / 12 + 1) * bValues[i % 12];
    }
    assertValues(expected, product);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearWithBiasValues(DType dtype) {
    Tensor x = tensor(dtype, A, 2, 3);
    Tensor weight = tensor(dtype, new double[] {1, 0, 0, 0, 1, 1}, 2, 3);
    Tensor bias = tensor(dtype, new double[] {10, 20}, 2);

    Tensor out = MatMul.linear(x, weight, bias);

    assertShape(new int[] {2, 2}, out);
    assertValues(new double[] {11, 25, 14, 31}, out);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linear3DWithoutBias(DType dtype) {
    Tensor x = tensor(dtype, A, 1, 2, 3);
    Tensor weight = tensor(dtype, new double[] {1, 0, 0, 0, 1, 1}, 2, 3);

    Tensor out = MatMul.linear(x, weight, null);

    assertShape(new int[] {1, 2, 2}, out);
    assertValues(new double[] {1, 5, 4, 11}, out);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearWithNoInputFeatures(DType dtype) {
    // A product over no features is the empty sum 0, so every output is the bias.
    Tensor x = Tensor.zeros(dtype, 3, 0).requiresGrad(true);
    Tensor weight = Tensor.zeros(dtype, 2, 0).requiresGrad(true);
    Tensor bias = tensor(dtype, new double[] {10, 20}, 2).requiresGrad(true);

    Tensor out = MatMul.linear(x, weight, bias);
    out.sum().backward();

    assertShape(new int[] {3, 2}, out);
    assertValues(new double[] {10, 20, 10, 20, 10, 20}, out);
    assertShape(new int[] {3, 0}, x.grad());
    assertShape(new int[] {2, 0}, weight.grad());
    assertValues(new double[] {3, 3}, bias.grad());
  }
}
