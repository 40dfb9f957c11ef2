package dev.kiln.nn.optim.schedule;

import java.util.Map;

/** Checks shared by the schedules' {@code loadState} methods. */
final class Schedules {
  private Schedules() {}

  /** Returns the value of {@code key}, or fails naming the schedule when it is missing. */
  static double require(Map<String, Double> state, String key, Class<?> owner) {
    Double value = state.get(key);
    if (value == null) {
      throw new IllegalArgumentException(
          owner.getSimpleName()
              + ": the state has no \""
              + key
              + "\" entry; its keys are "
              + state.keySet()
              + ". Load a map written by state()");
    }
    return value;
  }

  /** Rejects a value that is not a whole number >= 0 within int range. */
  static void requireCount(String key, double value, Class<?> owner) {
    if (!(value >= 0) || value != Math.rint(value) || value > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          owner.getSimpleName() + ": " + key + " must be a whole number >= 0, got " + value);
    }
  }
}
