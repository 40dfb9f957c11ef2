package dev.kiln.core.ops;

import static dev.kiln.core.ops.Values.arange;
import static dev.kiln.core.ops.Values.assertShape;
import static dev.kiln.core.ops.Values.assertValues;
import static dev.kiln.core.ops.Values.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Forward values of the shape ops, in both dtypes. */
class ShapeOpsValuesTest {

  @ParameterizedTest
  @EnumSource(DType.class)
  void reshapeInfersMinusOne(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    Tensor reshaped = x.reshape(4, -1);

    assertShape(new int[] {4, 6}, reshaped);
    assertValues(x.toDoubleArray(), reshaped);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void viewSharesStorage(DType dtype) {
    Tensor x = arange(dtype, 2, 3);

    Tensor view = x.view(3, 2);
    x.set(42, 1, 2);

    assertEquals(42.0, view.get(2, 1), 0.0);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void flattenUnsqueezeSqueezeShapes(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    assertShape(new int[] {24}, x.flatten());
    assertShape(new int[] {2, 12}, x.flatten(1, 2));
    assertShape(new int[] {1, 2, 3, 4}, x.unsqueeze(0));
    assertShape(new int[] {2, 3, 4, 1}, x.unsqueeze(-1));
    assertShape(new int[] {2, 3, 1, 4}, x.unsqueeze(-2));
    assertShape(new int[] {2, 4}, x.slice(1, 0, 1).squeeze(1));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void transposeMatrixValues(DType dtype) {
    Tensor x = arange(dtype, 2, 3);

    Tensor transposed = x.transpose(0, 1);

    assertShape(new int[] {3, 2}, transposed);
    assertValues(new double[] {0, 3, 1, 4, 2, 5}, transposed);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void permute3DMovesEveryElement(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    Tensor permuted = x.permute(2, 0, 1);

    assertShape(new int[] {4, 2, 3}, permuted);
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 3; j++) {
        for (int k = 0; k < 4; k++) {
          assertEquals(x.get(i, j, k), permuted.get(k, i, j), 0.0, "element " + i + j + k);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void permute4DMovesEveryElement(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 1, 5);

    Tensor permuted = x.permute(3, 0, 2, 1);

    assertShape(new int[] {5, 2, 1, 3}, permuted);
    for (int i = 0; i < 2; i++) {
      for (int j = 0; j < 3; j++) {
        for (int l = 0; l < 5; l++) {
          assertEquals(x.get(i, j, 0, l), permuted.get(l, i, 0, j), 0.0, "element " + i + j + l);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sliceClipsLikePython(DType dtype) {
    Tensor x = arange(dtype, 10);

    assertValues(new double[] {2, 3, 4}, x.slice(0, 2, 5));
    assertValues(new double[] {7, 8}, x.slice(0, -3, -1));
    assertValues(x.toDoubleArray(), x.slice(0, -20, 20));
    assertValues(new double[] {8, 9}, x.slice(0, 8, 100));
    assertShape(new int[] {0}, x.slice(0, 5, 2));
    assertShape(new int[] {0}, x.slice(0, 12, 15));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sliceMiddleDim(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 2);

    Tensor sliced = x.slice(1, 1, 3);

    assertShape(new int[] {2, 2, 2}, sliced);
    assertValues(new double[] {2, 3, 4, 5, 8, 9, 10, 11}, sliced);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void catAlongDimZero(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 2}, 1, 2);
    Tensor b = tensor(dtype, new double[] {3, 4, 5, 6}, 2, 2);
    Tensor c = tensor(dtype, new double[] {7, 8}, 1, 2);

    Tensor joined = Tensor.cat(0, a, b, c);

    assertShape(new int[] {4, 2}, joined);
    assertValues(new double[] {1, 2, 3, 4, 5, 6, 7, 8}, joined);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void catAlongDimOne(DType dtype) {
    Tensor a = tensor(dtype, new double[] {1, 2}, 2, 1);
    Tensor b = tensor(dtype, new double[] {3, 4, 5, 6}, 2, 2);
    Tensor c = tensor(dtype, new double[] {7, 8}, 2, 1);

    Tensor joined = Tensor.cat(1, a, b, c);

    assertShape(new int[] {2, 4}, joined);
    assertValues(new double[] {1, 3, 4, 7, 2, 5, 6, 8}, joined);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void expandRepeatsSizeOneDims(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, 2}, 2, 1);

    Tensor expanded = x.expand(3, 2, 2);

    assertShape(new int[] {3, 2, 2}, expanded);
    assertValues(new double[] {1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2}, expanded);
  }

  @Test
  void expandKeepsNegativeZero() {
    Tensor x = Tensor.of(new double[] {-0.0}, 1);

    double value = x.expand(2).get(1);

    assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(value));
  }
}
