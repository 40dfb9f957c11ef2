package dev.kiln.core.autograd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** Backward refuses to use an input that was changed in place after the forward pass. */
class InPlaceModificationTest {

  @Test
  void setBetweenForwardAndBackwardFails() {
    Tensor w = Tensor.of(new double[] {1, 2, 3}, 3).requiresGrad(true);
    Tensor loss = w.mul(w).sum();

    w.set(100, 0);
    IllegalStateException error = assertThrows(IllegalStateException.class, loss::backward);

    assertTrue(error.getMessage().contains("modified in place"), error.getMessage());
  }

  @Test
  void replacedStorageFails() {
    Tensor w = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
    Tensor loss = w.exp().sum();

    w.setStorage(Storage.wrap(new double[] {5, 6}));

    assertThrows(IllegalStateException.class, loss::backward);
  }

  @Test
  void changeBeforeForwardIsFine() {
    Tensor w = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
    w.set(3, 0);

    w.mul(w).sum().backward();

    assertTrue(w.grad().get(0) == 6.0);
  }

  @Test
  void closedInputThatBackwardDoesNotRead() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
    Tensor doubled = x.mul(2.0);
    Tensor loss = doubled.sum();

    doubled.close();
    loss.backward();

    assertEquals(2.0, x.grad().get(0));
    assertEquals(2.0, x.grad().get(1));
  }

  @Test
  void closedInputThatBackwardReadsIsNamed() {
    Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
    Tensor doubled = x.mul(2.0);
    Tensor loss = doubled.mul(doubled).sum();

    doubled.close();
    IllegalStateException error = assertThrows(IllegalStateException.class, loss::backward);

    assertTrue(error.getMessage().startsWith("backward through 'mul' failed"), error.getMessage());
    assertTrue(error.getMessage().contains("input 0 (shape [2])"), error.getMessage());
    assertTrue(error.getMessage().contains("closed after the forward pass"), error.getMessage());
    assertTrue(error.getCause().getMessage().contains("was closed"), error.getCause().getMessage());
  }

  @Test
  void closedTensorFailsClearly() {
    Tensor t = Tensor.zeros(DType.FLOAT32, 2, 2);
    t.close();

    IllegalStateException error = assertThrows(IllegalStateException.class, t::numel);

    assertTrue(error.getMessage().contains("closed"), error.getMessage());
  }
}
