package dev.kiln.nn.optim.schedule;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.optim.SGD;
import dev.kiln.nn.optim.schedule.ReduceLROnPlateau.Mode;
import dev.kiln.nn.optim.schedule.ReduceLROnPlateau.ThresholdMode;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ReduceLROnPlateauTest {

  private static SGD optimizer(double learningRate) {
    return new SGD(List.of(Tensor.of(new double[] {1.0}, 1).requiresGrad(true)), learningRate);
  }

  /** Steps through {@code metrics} and returns the learning rate after each step. */
  private static double[] run(SGD sgd, ReduceLROnPlateau plateau, double... metrics) {
    double[] rates = new double[metrics.length];
    for (int i = 0; i < metrics.length; i++) {
      plateau.step(metrics[i]);
      rates[i] = sgd.learningRate();
    }
    return rates;
  }

  @Test
  void plateauCutsAfterPatience() {
    SGD sgd = optimizer(1.0);
    var plateau = new ReduceLROnPlateau(sgd, Mode.MIN).factor(0.5).patience(2);

    // Epoch 3 improves by less than the relative threshold (0.9 * (1 - 1e-4) = 0.89991), so it
    // is bad. Bad epochs 3, 4 and 5 exceed patience 2, so epoch 5 cuts, and bad epochs 6, 7 and 8
    // make epoch 8 cut again.
    double[] rates = run(sgd, plateau, 1.0, 0.9, 0.89995, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5);

    assertArrayEquals(new double[] {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25}, rates, 0.0);
    assertEquals(0.5, plateau.best());
  }

  @Test
  void plateauCooldownIgnoresBadEpochs() {
    SGD sgd = optimizer(1.0);
    var plateau = new ReduceLROnPlateau(sgd, Mode.MIN).factor(0.5).patience(2).cooldown(1);

    // After the cut at epoch 5, epoch 6 is in cooldown and its bad epoch is dropped, so the next
    // cut comes at epoch 9, one later than without cooldown.
    double[] rates = run(sgd, plateau, 1.0, 0.9, 0.89995, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5);

    assertArrayEquals(new double[] {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25}, rates, 0.0);
  }

  @Test
  void improvementAboveThresholdResetsCount() {
    SGD sgd = optimizer(1.0);
    var plateau = new ReduceLROnPlateau(sgd, Mode.MIN).factor(0.5).patience(2);

    // Each metric beats 0.9 * (1 - 1e-4) by more than the threshold, so no epoch is bad.
    double[] rates = run(sgd, plateau, 1.0, 0.9, 0.8998, 0.8996, 0.8994);

    assertArrayEquals(new double[] {1, 1, 1, 1, 1}, rates, 0.0);
    assertEquals(0, plateau.badEpochs());
  }

  @Test
  void maxModeWithAbsoluteThreshold() {
    SGD sgd = optimizer(1.0);
    var plateau =
        new ReduceLROnPlateau(sgd, Mode.MAX)
            .patience(1)
            .threshold(0.05)
            .thresholdMode(ThresholdMode.ABSOLUTE);

    // 0.54 does not beat 0.5 + 0.05, so epochs 2 and 3 are bad and epoch 3 cuts by 0.1.
    double[] rates = run(sgd, plateau, 0.5, 0.54, 0.54);

    assertArrayEquals(new double[] {1, 1, 0.1}, rates, 1e-15);
  }

  @Test
  void cutStopsAtMinLearningRate() {
    SGD sgd = optimizer(1.0);
    var plateau = new ReduceLROnPlateau(sgd, Mode.MIN).patience(0).minLearningRate(0.05);

    double[] rates = run(sgd, plateau, 1.0, 1.0, 1.0, 1.0);

    assertArrayEquals(new double[] {1, 0.1, 0.05, 0.05}, rates, 1e-15);
  }

  @Test
  void stateRoundTripContinues() {
    SGD first = optimizer(1.0);
    var plateau = new ReduceLROnPlateau(first, Mode.MIN).factor(0.5).patience(2);
    run(first, plateau, 1.0, 1.0, 1.0);
    Map<String, Double> saved = plateau.state();

    SGD second = optimizer(1.0);
    var resumed = new ReduceLROnPlateau(second, Mode.MIN).factor(0.5).patience(2);
    resumed.loadState(saved);
    resumed.step(1.0);

    assertEquals(0.5, second.learningRate());
    assertEquals(4, resumed.epoch());
  }

  @Test
  void invalidSettingsRejected() {
    var plateau = new ReduceLROnPlateau(optimizer(1.0), Mode.MIN);

    var factor = assertThrows(IllegalArgumentException.class, () -> plateau.factor(1.0));
    var patience = assertThrows(IllegalArgumentException.class, () -> plateau.patience(-1));

    assertEquals("ReduceLROnPlateau: factor must be in [0, 1), got 1.0", factor.getMessage());
    assertEquals("ReduceLROnPlateau: patience must be >= 0, got -1", patience.getMessage());
  }
}
