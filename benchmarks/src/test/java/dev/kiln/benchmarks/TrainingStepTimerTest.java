package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Checks the warm-up rule, the median and the step times of {@link TrainingStepTimer} without a
 * model.
 */
class TrainingStepTimerTest {

  @Test
  void warmupLastsAtLeastSeconds() {
    int[] runs = new int[1];
    TrainingStepTimer.Timing timing = TrainingStepTimer.time(() -> runs[0]++, 3, 0.2, 4);

    assertTrue(timing.warmupSteps() > 3, "warm-up steps: " + timing.warmupSteps());
    assertTrue(timing.warmupSeconds() >= 0.2, "warm-up seconds: " + timing.warmupSeconds());
    assertEquals(timing.warmupSteps() + 4, runs[0]);
    assertEquals(4, timing.stepMillis().length);
  }

  @Test
  void warmupRunsAtLeastSteps() {
    TrainingStepTimer.Timing timing = TrainingStepTimer.time(() -> {}, 5, 0, 1);

    assertEquals(5, timing.warmupSteps());
  }

  @Test
  void evenCountMedianIsMeanOfMiddle() {
    TrainingStepTimer.Timing timing =
        new TrainingStepTimer.Timing(5, 3.0, new double[] {1, 2, 3.5, 10});

    String line = TrainingStepTimer.resultLine("device=cpu", 10, timing, 0.5);

    assertTrue(line.contains(" median_ms=2.75 "), line);
    assertTrue(line.contains(" median=2.8 ms "), line);
    assertTrue(line.contains(" images/s=3636.4 "), line);
    assertTrue(line.contains(" warmup_steps=5 warmup_s=3.0 timed_steps=4 "), line);
  }

  @Test
  void stepTimesKeepOrderAndPrecision() {
    double[] millis = {10, 0.1 + 0.2, 3.5, 1e-4};
    TrainingStepTimer.Timing timing = new TrainingStepTimer.Timing(5, 3.0, millis);

    String line = TrainingStepTimer.resultLine("device=cpu", 10, timing, 0.5);

    assertTrue(line.endsWith(" step_ms=10.0,0.30000000000000004,3.5,1.0E-4"), line);
    assertTrue(line.contains(" min=0.0 ms "), line);
    String field = line.substring(line.indexOf(" step_ms=") + " step_ms=".length());
    double[] parsed = Arrays.stream(field.split(",")).mapToDouble(Double::parseDouble).toArray();
    assertArrayEquals(millis, parsed);
  }

  @Test
  void timedStepsStayInRunOrder() {
    // Each step advances a fake clock by its own duration, slower first, so sorting would reverse
    // the order.
    long[] durations = {3_000_000, 2_000_000, 1_500_000};
    long[] now = {0};
    int[] runs = {0};

    TrainingStepTimer.Timing timing =
        TrainingStepTimer.time(() -> now[0] += durations[runs[0]++], 0, 0, 3, () -> now[0]);

    assertArrayEquals(new double[] {3, 2, 1.5}, timing.stepMillis());
  }
}
