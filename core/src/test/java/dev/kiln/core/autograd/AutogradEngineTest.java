package dev.kiln.core.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;

class AutogradEngineTest {

  @Test
  void backwardOfProductGivesOtherFactor() {
    Tensor x = Tensor.of(new double[] {1, 2, 3}, 3).requiresGrad(true);
    Tensor y = Tensor.of(new double[] {4, 5, 6}, 3).requiresGrad(true);

    x.mul(y).sum().backward();

    assertArrayEquals(new double[] {4, 5, 6}, x.grad().toDoubleArray());
    assertArrayEquals(new double[] {1, 2, 3}, y.grad().toDoubleArray());
  }

  @Test
  void tensorUsedTwiceSumsBothPaths() {
    Tensor x = Tensor.of(new double[] {3}, 1).requiresGrad(true);

    x.mul(x).add(x).sum().backward();

    assertEquals(7.0, x.grad().item(), 0.0);
  }

  @Test
  void gradientsAccumulateUntilZeroGrad() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);

    x.mul(3).sum().backward();
    x.mul(3).sum().backward();
    assertArrayEquals(new double[] {6, 6}, x.grad().toDoubleArray());

    x.zeroGrad();
    assertNull(x.grad());
  }

  @Test
  void secondBackwardThroughFreedGraphFails() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
    Tensor loss = x.exp().sum();
    loss.backward();

    IllegalStateException error = assertThrows(IllegalStateException.class, loss::backward);

    assertTrue(error.getMessage().contains("the first backward pass freed"), error.getMessage());
  }

  @Test
  void retainedGraphAllowsSecondBackward() {
    Tensor x = Tensor.of(new double[] {2}, 1).requiresGrad(true);
    Tensor loss = x.mul(x).sum();

    loss.backward(Tensor.of(new double[] {1}), true);
    loss.backward();

    assertEquals(8.0, x.grad().item(), 0.0);
  }

  @Test
  void upstreamGradientScalesResult() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);

    x.mul(2).backward(Tensor.of(new double[] {10, 100}, 2));

    assertArrayEquals(new double[] {20, 200}, x.grad().toDoubleArray());
  }

  @Test
  void noGradScopeRecordsNothing() {
    Tensor x = Tensor.of(new double[] {1}, 1).requiresGrad(true);
    Tensor y;
    try (var _ = GradMode.noGrad()) {
      y = x.mul(2);
    }

    assertFalse(y.requiresGrad());
    assertTrue(GradMode.isEnabled());
  }

  @Test
  void detachCutsGraph() {
    Tensor x = Tensor.of(new double[] {1}, 1).requiresGrad(true);
    Tensor y = x.mul(2).detach();

    assertFalse(y.requiresGrad());
    assertTrue(y.isLeaf());
  }

  @Test
  void backwardOnNonScalarWithoutGradientFails() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> x.mul(2).backward());

    assertTrue(error.getMessage().contains("[2]"), error.getMessage());
  }

  @Test
  void gradCheckPassesForComposite() {
    Tensor a = Tensor.of(new double[] {0.5, -1.2, 2.0, 0.3, 1.1, -0.7}, 2, 3).requiresGrad(true);
    Tensor b = Tensor.of(new double[] {0.2, 0.4, -0.9}, 3).requiresGrad(true);

    GradCheck.assertGradients(in -> in.get(0).mul(in.get(1)).tanh().add(in.get(1)).exp(), a, b);
  }
}
