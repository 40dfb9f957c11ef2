package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.nn.loss.L1Loss;
import dev.kiln.nn.loss.MSELoss;
import java.util.List;
import org.junit.jupiter.api.Test;

class ValidationTest {

  /**
   * Three faces of two values each, in two batches: (1, 2), (4, -1) and (1, -1). Their mean shape
   * is (2, 0), with errors -1, 2, -1 in the first column and 2, -1, -1 in the second: MSE 12 / 6,
   * L1 8 / 6. Their median shape is (1, -1), with errors 0, 3, 0 and 3, 0, 0: MSE 18 / 6, L1 6 / 6.
   */
  @Test
  void baselinesUseEveryBatch() {
    List<float[]> batches = List.of(new float[] {1, 2, 4, -1}, new float[] {1, -1});
    ConstantShapes shapes = new ConstantShapes();
    shapes.add(MedianShapeTest.batch(2, batches.get(0)));
    shapes.add(MedianShapeTest.batch(2, batches.get(1)));

    Validation mse = Validation.withBaselines(0.5, 0.1, batches, shapes, new MSELoss());
    Validation l1 = Validation.withBaselines(0.5, 0.1, batches, shapes, new L1Loss());

    assertEquals(12.0 / 6, mse.meanShapeLoss(), 1e-6);
    assertEquals(18.0 / 6, mse.medianShapeLoss(), 1e-6);
    assertEquals(12.0 / 6, mse.constantShapeLoss(), 1e-6);
    assertEquals(8.0 / 6, l1.meanShapeLoss(), 1e-6);
    assertEquals(6.0 / 6, l1.medianShapeLoss(), 1e-6);
    assertEquals(6.0 / 6, l1.constantShapeLoss(), 1e-6);
    assertEquals(0.5, l1.loss());
    assertEquals(0.1, l1.nme());
  }

  @Test
  void baselinesNaNBeforeTraining() {
    List<float[]> batches = List.of(new float[] {1, 2});

    Validation validation =
        Validation.withBaselines(0.5, 0.1, batches, new ConstantShapes(), new L1Loss());

    assertEquals(Double.NaN, validation.meanShapeLoss());
    assertEquals(Double.NaN, validation.medianShapeLoss());
    assertEquals(Double.NaN, validation.constantShapeLoss());
  }
}
