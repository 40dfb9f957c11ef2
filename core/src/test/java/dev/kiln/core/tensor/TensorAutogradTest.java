package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Autograd behaviour seen through tensors: shared inputs, diamonds, leaves and deep graphs. */
class TensorAutogradTest {
  /** Values are sums and products of a few doubles, so they agree to a few ulps. */
  private static final double TOLERANCE = 1e-12;

  /** Enough for the iterative graph walk, far too little for one stack frame per op. */
  private static final long SMALL_STACK_BYTES = 256 * 1024;

  @Test
  void tensorUsedByTwoOpsSumsGradients() {
    Tensor x = Tensor.of(new double[] {0.5, -1}, 2).requiresGrad(true);

    x.exp().add(x.mul(3)).sum().backward();

    assertArrayEquals(
        new double[] {Math.exp(0.5) + 3, Math.exp(-1) + 3}, x.grad().toDoubleArray(), TOLERANCE);
  }

  @Test
  void diamondGraphSumsBothBranches() {
    Tensor x = Tensor.of(new double[] {0.5, 2}, 2).requiresGrad(true);
    Tensor y = x.mul(2);

    // d/dx (e^(2x) + (2x)^2) = 2 e^(2x) + 8x.
    y.exp().add(y.pow(2)).sum().backward();

    assertArrayEquals(
        new double[] {2 * Math.exp(1) + 4, 2 * Math.exp(4) + 16},
        x.grad().toDoubleArray(),
        TOLERANCE);
  }

  @Test
  void diamondInnerNodeRunsOnce() {
    Tensor x = Tensor.of(new double[] {1}, 1).requiresGrad(true);
    Tensor y = x.mul(3);

    // Without retainGraph a second visit of y's node would fail, because the first frees it.
    y.add(y).sum().backward();

    assertEquals(6.0, x.grad().item(), 0.0);
  }

  @Test
  void requiresGradFalseOnNonLeafFails() {
    Tensor x = Tensor.of(new double[] {1}, 1).requiresGrad(true);
    Tensor y = x.mul(2);

    assertThrows(IllegalStateException.class, () -> y.requiresGrad(false));
  }

  @Test
  void opsWithoutGradRecordNothing() {
    Tensor a = Tensor.of(new double[] {1, 2}, 2);
    Tensor b = Tensor.of(new double[] {3, 4}, 2);

    Tensor result = a.mul(b).exp().sum();

    assertFalse(result.requiresGrad());
    assertNull(result.gradFn());
    assertTrue(result.isLeaf());
  }

  @Test
  void opWithOneGradInputRecords() {
    Tensor a = Tensor.of(new double[] {1, 2}, 2);
    Tensor b = Tensor.of(new double[] {3, 4}, 2).requiresGrad(true);

    Tensor product = a.mul(b);
    product.sum().backward();

    assertNotNull(product.gradFn());
    assertNull(a.grad());
    assertArrayEquals(new double[] {1, 2}, b.grad().toDoubleArray(), 0.0);
  }

  @Test
  void deepChainBackwardOnSmallStack() throws InterruptedException {
    Tensor x = Tensor.of(new double[] {0.25, -1}, 2).requiresGrad(true);
    AtomicReference<Throwable> failure = new AtomicReference<>();

    Thread worker =
        new Thread(
            null,
            () -> {
              try {
                Tensor y = x;
                for (int i = 0; i < 10_000; i++) {
                  y = y.add(0.5);
                }
                y.sum().backward();
              } catch (Throwable e) {
                failure.set(e);
              }
            },
            "deep-chain",
            SMALL_STACK_BYTES);
    worker.start();
    worker.join();

    assertNull(failure.get(), () -> "backward failed: " + failure.get());
    assertArrayEquals(new double[] {1, 1}, x.grad().toDoubleArray(), 0.0);
  }
}
