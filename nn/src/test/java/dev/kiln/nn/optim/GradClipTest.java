package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class GradClipTest {

  private static Tensor withGrad(double... grad) {
    Tensor param = Tensor.zeros(DType.FLOAT64, grad.length);
    param.requiresGrad(true);
    param.setGrad(Tensor.of(grad, grad.length));
    return param;
  }

  private static double totalNorm(List<Tensor> params) {
    double sum = 0;
    for (Tensor param : params) {
      if (param.grad() != null) {
        for (double value : param.grad().toDoubleArray()) {
          sum += value * value;
        }
      }
    }
    return Math.sqrt(sum);
  }

  @Test
  void clipNormReturnsTotalNorm() {
    // sqrt(3² + 4² + 12²) = 13
    List<Tensor> params = List.of(withGrad(3, 4), withGrad(12));

    double norm = GradClip.clipGradNorm(params, 100);

    assertEquals(13.0, norm, 1e-15);
  }

  @Test
  void clipNormScalesToMaxNorm() {
    List<Tensor> params = List.of(withGrad(3, 4), withGrad(12));

    double before = GradClip.clipGradNorm(params, 1.0);

    assertEquals(13.0, before, 1e-15);
    assertEquals(1.0, totalNorm(params), 1e-6);
    // Every gradient is scaled by the same factor, so directions are kept.
    assertArrayEquals(
        new double[] {3 / 13.0, 4 / 13.0}, params.get(0).grad().toDoubleArray(), 1e-6);
  }

  @Test
  void clipNormKeepsGradientsUnderLimit() {
    Tensor param = withGrad(3, 4);
    Tensor grad = param.grad();

    double norm = GradClip.clipGradNorm(List.of(param), 5.5);

    assertEquals(5.0, norm, 1e-15);
    assertSame(grad, param.grad());
    assertArrayEquals(new double[] {3, 4}, param.grad().toDoubleArray(), 0.0);
  }

  @Test
  void clipNormLeavesOldGradientTensor() {
    Tensor param = withGrad(3, 4);
    Tensor original = param.grad();

    GradClip.clipGradNorm(List.of(param), 1.0);

    assertArrayEquals(new double[] {3, 4}, original.toDoubleArray(), 0.0);
  }

  @Test
  void clipNormSkipsMissingGradients() {
    Tensor frozen = Tensor.zeros(DType.FLOAT64, 2).requiresGrad(true);

    double norm = GradClip.clipGradNorm(List.of(frozen, withGrad(6, 8)), 1.0);

    assertEquals(10.0, norm, 1e-15);
    assertNull(frozen.grad());
  }

  @Test
  void clipNormRejectsNaNGradient() {
    List<Tensor> params = List.of(withGrad(1, Double.NaN));

    var error = assertThrows(IllegalStateException.class, () -> GradClip.clipGradNorm(params, 1));

    assertTrue(error.getMessage().contains("total gradient norm is NaN"), error.getMessage());
  }

  @Test
  void clipNormRejectsInfiniteGradient() {
    List<Tensor> params = List.of(withGrad(1, Double.POSITIVE_INFINITY));

    var error = assertThrows(IllegalStateException.class, () -> GradClip.clipGradNorm(params, 1));

    assertTrue(error.getMessage().contains("norm is Infinity"), error.getMessage());
  }

  @Test
  void clipNormRejectsNegativeMaxNorm() {
    List<Tensor> params = List.of(withGrad(1));

    var error =
        assertThrows(IllegalArgumentException.class, () -> GradClip.clipGradNorm(params, -1));

    assertEquals("clipGradNorm: maxNorm must be >= 0, got -1.0", error.getMessage());
  }

  @Test
  void clipValueClampsEachElement() {
    Tensor param = withGrad(-3, 0.5, 2);

    GradClip.clipGradValue(List.of(param), 1.0);

    assertArrayEquals(new double[] {-1, 0.5, 1}, param.grad().toDoubleArray(), 0.0);
  }
}
