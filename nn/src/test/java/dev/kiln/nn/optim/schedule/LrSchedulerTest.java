package dev.kiln.nn.optim.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.optim.SGD;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LrSchedulerTest {
  /** Relative tolerance for closed forms that Math.pow and Math.cos round slightly differently. */
  private static final double TOLERANCE = 1e-15;

  private static SGD optimizer(double learningRate) {
    return new SGD(List.of(Tensor.of(new double[] {1.0}, 1).requiresGrad(true)), learningRate);
  }

  @Test
  void stepLRDecaysEveryStepSize() {
    SGD sgd = optimizer(0.1);
    StepLR schedule = new StepLR(sgd, 3, 0.1);
    // PyTorch: lr = 0.1 * 0.1^floor(epoch / 3) for epochs 0..10.
    double[] expected = {0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4};

    assertEquals(expected[0], sgd.learningRate(), expected[0] * TOLERANCE);
    for (int epoch = 1; epoch <= 10; epoch++) {
      schedule.step();
      assertEquals(
          expected[epoch], sgd.learningRate(), expected[epoch] * TOLERANCE, "epoch " + epoch);
    }
  }

  @Test
  void cosineStartsAtBaseRate() {
    SGD sgd = optimizer(0.1);
    CosineAnnealingLR schedule = new CosineAnnealingLR(sgd, 10, 0.001);

    assertEquals(0.1, schedule.learningRateAt(0), 0.1 * TOLERANCE);
    assertEquals(0.1, sgd.learningRate());
  }

  @Test
  void cosineHalfwayIsMidpoint() {
    SGD sgd = optimizer(0.1);
    CosineAnnealingLR schedule = new CosineAnnealingLR(sgd, 10, 0.001);

    for (int epoch = 0; epoch < 5; epoch++) {
      schedule.step();
    }

    // cos(π/2) = 0, so lr = 0.001 + (0.1 - 0.001) / 2 = 0.0505.
    assertEquals(0.0505, sgd.learningRate(), 0.0505 * TOLERANCE);
  }

  @Test
  void cosineEndsAtEtaMin() {
    SGD sgd = optimizer(0.1);
    CosineAnnealingLR schedule = new CosineAnnealingLR(sgd, 10, 0.001);

    for (int epoch = 0; epoch < 10; epoch++) {
      schedule.step();
    }

    assertEquals(0.001, sgd.learningRate(), 0.001 * TOLERANCE);
    assertEquals(10, schedule.epoch());
  }

  @Test
  void cosineQuarterMatchesFormula() {
    CosineAnnealingLR schedule = new CosineAnnealingLR(optimizer(1.0), 4);

    // (1 + cos(π/4)) / 2 = (2 + √2) / 4
    assertEquals((2 + Math.sqrt(2)) / 4, schedule.learningRateAt(1), TOLERANCE);
  }

  @Test
  void stateRoundTripContinuesSchedule() {
    SGD first = optimizer(0.1);
    StepLR schedule = new StepLR(first, 2, 0.5);
    schedule.step();
    schedule.step();
    Map<String, Double> saved = schedule.state();

    SGD second = optimizer(0.1);
    StepLR resumed = new StepLR(second, 2, 0.5);
    resumed.loadState(saved);
    resumed.step();
    resumed.step();

    assertEquals(4, resumed.epoch());
    assertEquals(0.025, second.learningRate(), 0.025 * TOLERANCE);
  }

  @Test
  void invalidSettingsRejected() {
    SGD sgd = optimizer(0.1);

    var stepSize = assertThrows(IllegalArgumentException.class, () -> new StepLR(sgd, 0, 0.1));
    var tMax = assertThrows(IllegalArgumentException.class, () -> new CosineAnnealingLR(sgd, 0));
    var missing =
        assertThrows(
            IllegalArgumentException.class,
            () -> new StepLR(sgd, 1, 0.1).loadState(Map.of("base_lr", 0.1)));

    assertEquals("StepLR: stepSize must be >= 1, got 0", stepSize.getMessage());
    assertEquals("CosineAnnealingLR: tMax must be >= 1, got 0", tMax.getMessage());
    assertTrue(missing.getMessage().contains("no \"last_epoch\" entry"), missing.getMessage());
  }
}
