package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.schedule.CosineAnnealingLR;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A schedule restored from checkpoint metadata, with the same epoch count and with another. */
class ScheduleTest {
  private static final double BASE = 1e-3;
  private static final double FLOOR = 1e-5;

  private static Adam optimizer() {
    return new Adam(List.of(Tensor.of(new float[] {1, 2}, 2).requiresGrad(true)))
        .learningRate(BASE);
  }

  /** Returns the metadata of a cosine schedule over {@code epochs} after {@code done} epochs. */
  private static Map<String, String> savedAfter(int epochs, int done) {
    Schedule schedule = Schedule.of(new CosineAnnealingLR(optimizer(), epochs, FLOOR));
    for (int i = 0; i < done; i++) {
      schedule.afterEpoch(0.1);
    }
    return schedule.state();
  }

  @Test
  void sameEpochCountKeepsTheRate() {
    Adam adam = optimizer();
    // The rate that the checkpoint's optimizer state carries: halfway down the cosine.
    double saved = FLOOR + (BASE - FLOOR) * 0.5;
    adam.setLearningRate(saved);
    Schedule.of(new CosineAnnealingLR(adam, 4, FLOOR)).loadState(savedAfter(4, 2));
    assertEquals(saved, adam.learningRate(), 1e-15);
  }

  @Test
  void longerRunReplansTheRate() {
    Adam adam = optimizer();
    // The checkpoint's own plan ended at the floor after its one epoch.
    adam.setLearningRate(FLOOR);
    Schedule.of(new CosineAnnealingLR(adam, 3, FLOOR)).loadState(savedAfter(1, 1));
    // Epoch 1 of 3: (1 + cos(pi / 3)) / 2 = 0.75 of the way from the floor to the base rate.
    assertEquals(FLOOR + (BASE - FLOOR) * 0.75, adam.learningRate(), 1e-15);
  }
}
