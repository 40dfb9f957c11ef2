package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TensorBasicsTest {

  @Test
  void itemOfMultiElementTensorFails() {
    Tensor x = Tensor.zeros(DType.FLOAT64, 2, 3);

    IllegalStateException error = assertThrows(IllegalStateException.class, x::item);

    assertTrue(error.getMessage().contains("[2, 3]"), error.getMessage());
  }

  @Test
  void itemOfOneElementTensor() {
    assertEquals(2.5, Tensor.of(new double[] {2.5}, 1, 1).item(), 0.0);
    assertEquals(-1.0, Tensor.scalar(-1, DType.FLOAT32).item(), 0.0);
  }

  @Test
  void storageSizeMismatchNamesShape() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Tensor.of(new double[] {1, 2, 3}, 2, 2));

    assertTrue(error.getMessage().contains("[2, 2]"), error.getMessage());
  }

  @Test
  void indexOutOfBoundsNamesShape() {
    Tensor x = Tensor.zeros(DType.FLOAT32, 2, 3);

    IndexOutOfBoundsException error =
        assertThrows(IndexOutOfBoundsException.class, () -> x.get(1, 3));

    assertTrue(error.getMessage().contains("[2, 3]"), error.getMessage());
  }

  @Test
  void copyFromShapeMismatchNamesShapes() {
    Tensor target = Tensor.zeros(DType.FLOAT64, 2, 3);
    Tensor source = Tensor.zeros(DType.FLOAT64, 3, 2);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> target.copyFrom(source));

    assertTrue(error.getMessage().contains("[2, 3]"), error.getMessage());
    assertTrue(error.getMessage().contains("[3, 2]"), error.getMessage());
  }
}
