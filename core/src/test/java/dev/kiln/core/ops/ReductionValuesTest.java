package dev.kiln.core.ops;

import static dev.kiln.core.ops.Values.arange;
import static dev.kiln.core.ops.Values.assertShape;
import static dev.kiln.core.ops.Values.assertValues;
import static dev.kiln.core.ops.Values.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Forward values of sum, mean, max and variance, in both dtypes. Most cases reduce 0..23 laid out
 * as [2, 3, 4], where element [i, j, k] is 12i + 4j + k.
 */
class ReductionValuesTest {

  @ParameterizedTest
  @EnumSource(DType.class)
  void sumAllElements(DType dtype) {
    Tensor total = arange(dtype, 2, 3, 4).sum();

    assertShape(new int[] {}, total);
    assertEquals(276.0, total.item(), 0.0);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sumOverFirstAndLastDims(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    Tensor squeezed = x.sum(new int[] {0, 2}, false);
    Tensor keptAsOnes = x.sum(new int[] {0, 2}, true);

    assertShape(new int[] {3}, squeezed);
    assertValues(new double[] {60, 92, 124}, squeezed);
    assertShape(new int[] {1, 3, 1}, keptAsOnes);
    assertValues(new double[] {60, 92, 124}, keptAsOnes);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sumNegativeDimsMatchPositive(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    assertValues(x.sum(new int[] {0, 2}, false).toDoubleArray(), x.sum(new int[] {-1, -3}, false));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void meanOverMiddleDim(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    Tensor mean = x.mean(new int[] {1}, true);

    assertShape(new int[] {2, 1, 4}, mean);
    assertValues(new double[] {4, 5, 6, 7, 16, 17, 18, 19}, mean);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void meanAllElements(DType dtype) {
    assertEquals(11.5, arange(dtype, 2, 3, 4).mean().item(), 0.0);
  }

  @Test
  void meanDividesByCount() {
    Tensor x = Tensor.of(new double[] {1, 1.5, 2.5}, 3);

    // Bitwise: 5 * (1 / 3.0) is one ulp below 5 / 3.0.
    assertEquals(5 / 3.0, x.mean().item(), 0.0);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void varianceBiasedAndUnbiased(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, 2, 3, 4, 2, 4, 6, 8}, 2, 4);

    Tensor biased = x.variance(new int[] {1}, false, false);
    Tensor unbiased = x.variance(new int[] {1}, true, true);

    assertShape(new int[] {2}, biased);
    assertValues(new double[] {1.25, 5}, biased);
    assertShape(new int[] {2, 1}, unbiased);
    assertValues(new double[] {5 / 3.0, 20 / 3.0}, unbiased);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void varianceOverSeveralDims(DType dtype) {
    Tensor x = arange(dtype, 2, 3, 4);

    // Each j reduces 4j + {0..3, 12..15}: deviations from the mean are ±4.5 to ±7.5, squares 37.25.
    Tensor variance = x.variance(new int[] {0, 2}, false, false);

    assertValues(new double[] {37.25, 37.25, 37.25}, variance);
  }

  @Test
  void unbiasedVarianceOfOneIsNaN() {
    Tensor x = Tensor.of(new double[] {3}, 1);

    assertTrue(Double.isNaN(x.variance(new int[] {0}, true, false).item()));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxAlongDimFirstTieWins(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, 3, 3, 2, 5, 5, 0, 5}, 2, 4);

    Reductions.MaxResult result = x.max(1, false);

    assertValues(new double[] {3, 5}, result.values());
    assertEquals(1, result.index(0));
    assertEquals(0, result.index(1));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxAlongDimZeroFirstTieWins(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, 7, 4, 7, 4, 2}, 3, 2);

    Reductions.MaxResult result = x.max(0, true);

    assertShape(new int[] {1, 2}, result.values());
    assertArrayEquals(new int[] {1, 2}, result.indexShape());
    assertValues(new double[] {4, 7}, result.values());
    assertArrayEquals(new int[] {1, 0}, result.indices());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxGradientGoesToFirstTie(DType dtype) {
    Tensor x = tensor(dtype, new double[] {2, 5, 5}, 3).requiresGrad(true);

    x.max(0, false).values().backward();

    assertValues(new double[] {0, 1, 0}, x.grad());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxAlongDimPicksNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {1, Double.NaN, 3, Double.NaN}, 4);

    Reductions.MaxResult result = x.max(0, false);

    assertTrue(Double.isNaN(result.values().item()), "max value");
    assertEquals(1, result.index(0));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxAllPicksNaN(DType dtype) {
    Tensor x = tensor(dtype, new double[] {4, 9, Double.NaN, 1}, 2, 2);

    assertTrue(Double.isNaN(x.max().item()));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxAllElements(DType dtype) {
    Tensor x = tensor(dtype, new double[] {-4, 9.5, 2, -11}, 2, 2);

    assertEquals(9.5, x.max().item(), 0.0);
  }
}
