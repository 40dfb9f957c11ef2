package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.schedule.CosineAnnealingLR;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The schedules that a run's options build, epoch by epoch, and a schedule restored from checkpoint
 * metadata, with the same epoch count and with another.
 */
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

  private static TrainOptions scheduled(String schedule, int epochs) {
    return new TrainOptions(
        Path.of("data"),
        "default",
        epochs,
        16,
        "adam",
        BASE,
        0,
        "l1",
        schedule,
        1,
        0.2,
        1,
        0,
        0,
        false);
  }

  /** Returns the 1-based epochs that train at a lower rate than the epoch before them. */
  private static List<Integer> epochsAfterCuts(Schedule schedule, Adam adam, double[] nmes) {
    List<Integer> cuts = new ArrayList<>();
    for (int epoch = 1; epoch <= nmes.length; epoch++) {
      double rate = adam.learningRate();
      schedule.afterEpoch(nmes[epoch - 1]);
      if (adam.learningRate() < rate && epoch < nmes.length) {
        cuts.add(epoch + 1);
      }
    }
    return cuts;
  }

  @Test
  void stepCutsBeforeEpochs21And41And61() {
    Adam adam = optimizer();
    Schedule schedule = TrainingSetup.schedule(scheduled("step", 62), adam);
    assertEquals(List.of(21, 41, 61), epochsAfterCuts(schedule, adam, new double[62]));
  }

  @Test
  void stepCutsTwiceInSixtyEpochs() {
    Adam adam = optimizer();
    Schedule schedule = TrainingSetup.schedule(scheduled("step", 60), adam);
    assertEquals(List.of(21, 41), epochsAfterCuts(schedule, adam, new double[60]));
  }

  @Test
  void plateauCutsAfterFourthEpochWithoutImprovement() {
    Adam adam = optimizer();
    Schedule schedule = TrainingSetup.schedule(scheduled("plateau", 8), adam);
    // Epoch 1 sets the best NME; epochs 2 to 5 do not improve on it.
    double[] nmes = {0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2};
    assertEquals(List.of(6), epochsAfterCuts(schedule, adam, nmes));
  }
}
