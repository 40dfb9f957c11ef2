package dev.kiln.keypoints.train;

import dev.kiln.nn.optim.schedule.LrScheduler;
import dev.kiln.nn.optim.schedule.ReduceLROnPlateau;
import java.util.HashMap;
import java.util.Map;

/**
 * The learning-rate schedule of a run behind one interface: an epoch-based {@link LrScheduler}, a
 * {@link ReduceLROnPlateau} on the validation NME, or none. Its state travels in checkpoint
 * metadata under {@code schedule.*} keys.
 */
public final class Schedule {
  private static final String PREFIX = "schedule.";

  private final LrScheduler epochBased;
  private final ReduceLROnPlateau plateau;

  private Schedule(LrScheduler epochBased, ReduceLROnPlateau plateau) {
    this.epochBased = epochBased;
    this.plateau = plateau;
  }

  public static Schedule none() {
    return new Schedule(null, null);
  }

  public static Schedule of(LrScheduler scheduler) {
    return new Schedule(scheduler, null);
  }

  public static Schedule of(ReduceLROnPlateau scheduler) {
    return new Schedule(null, scheduler);
  }

  /** Advances the schedule after an epoch with validation NME {@code validationNme}. */
  public void afterEpoch(double validationNme) {
    if (epochBased != null) {
      epochBased.step();
    }
    if (plateau != null) {
      plateau.step(validationNme);
    }
  }

  /** Returns the state as metadata entries. */
  public Map<String, String> state() {
    Map<String, Double> values = Map.of();
    if (epochBased != null) {
      values = epochBased.state();
    } else if (plateau != null) {
      values = plateau.state();
    }
    Map<String, String> result = new HashMap<>();
    values.forEach((key, value) -> result.put(PREFIX + key, Double.toString(value)));
    return result;
  }

  /**
   * Restores the state from checkpoint metadata. An epoch-based schedule then sets the learning
   * rate of its current epoch again, because a resumed run may have been given another epoch count,
   * and the rate saved with the optimizer belongs to the old plan.
   */
  public void loadState(Map<String, String> metadata) {
    Map<String, Double> values = new HashMap<>();
    metadata.forEach(
        (key, value) -> {
          if (key.startsWith(PREFIX)) {
            values.put(key.substring(PREFIX.length()), Double.parseDouble(value));
          }
        });
    if (epochBased != null) {
      epochBased.loadState(values);
      epochBased.optimizer().setLearningRate(epochBased.learningRateAt(epochBased.epoch()));
    }
    if (plateau != null) {
      plateau.loadState(values);
    }
  }
}
