package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.nn.loss.L1Loss;
import dev.kiln.nn.loss.MSELoss;
import java.util.List;
import org.junit.jupiter.api.Test;

class ValidationTest {

  /**
   * Three faces of two values each, in two batches: (1, 2), (4, -1) and (1, -1). Predicting (2, 0)
   * for each gives the errors -1, 2, -1 in the first column and 2, -1, -1 in the second.
   */
  @Test
  void constantLossUsesEveryBatch() {
    List<float[]> batches = List.of(new float[] {1, 2, 4, -1}, new float[] {1, -1});
    float[] shape = {2, 0};

    assertEquals(12.0 / 6, Validation.constantLoss(batches, shape, new MSELoss()), 1e-6);
    assertEquals(8.0 / 6, Validation.constantLoss(batches, shape, new L1Loss()), 1e-6);
  }
}
