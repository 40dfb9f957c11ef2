package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Checks the warm-up rule and the median of {@link TrainingStepTimer} without a model. */
class TrainingStepTimerTest {

  @Test
  void warmupLastsAtLeastSeconds() {
    int[] runs = new int[1];
    TrainingStepTimer.Timing timing = TrainingStepTimer.time(() -> runs[0]++, 3, 0.2, 4);

    assertTrue(timing.warmupSteps() > 3, "warm-up steps: " + timing.warmupSteps());
    assertTrue(timing.warmupSeconds() >= 0.2, "warm-up seconds: " + timing.warmupSeconds());
    assertEquals(timing.warmupSteps() + 4, runs[0]);
    assertEquals(4, timing.sortedMillis().length);
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

    assertTrue(line.endsWith(" median_ms=2.75"), line);
    assertTrue(line.contains(" median=2.8 ms "), line);
    assertTrue(line.contains(" images/s=3636.4 "), line);
    assertTrue(line.contains(" warmup_steps=5 warmup_s=3.0 timed_steps=4 "), line);
  }
}
