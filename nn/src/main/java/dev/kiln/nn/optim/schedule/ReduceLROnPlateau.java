package dev.kiln.nn.optim.schedule;

import dev.kiln.nn.optim.Optimizer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Cuts the learning rate by {@code factor} when a metric stops improving, as PyTorch's {@code
 * ReduceLROnPlateau}.
 *
 * <p>Each {@link #step(double)} takes the epoch's metric, which improves on the best so far when it
 * beats it by the threshold. In relative mode that means below best * (1 - threshold) for MIN and
 * above best * (1 + threshold) for MAX. In absolute mode it means below best - threshold or above
 * best + threshold. After more than {@code patience} epochs in a row without improvement, the rate
 * becomes max(lr * factor, minLr), and then for {@code cooldown} epochs bad epochs are not counted.
 * A cut smaller than 1e-8 is skipped, as in PyTorch. A NaN metric never improves.
 *
 * <pre>{@code
 * var plateau = new ReduceLROnPlateau(optimizer, ReduceLROnPlateau.Mode.MIN).patience(2);
 * plateau.step(validationLoss);
 * }</pre>
 */
public final class ReduceLROnPlateau {
  /** Whether lower metric values (a loss) or higher ones (an accuracy) are better. */
  public enum Mode {
    MIN,
    MAX
  }

  /** Form of the margin set by {@link #threshold(double)}: a fraction of best, or a value. */
  public enum ThresholdMode {
    RELATIVE,
    ABSOLUTE
  }

  /** Smallest change of the learning rate that is applied, as PyTorch's {@code eps}. */
  private static final double MIN_CHANGE = 1e-8;

  private final Optimizer optimizer;
  private final Mode mode;
  private double factor = 0.1;
  private int patience = 10;
  private double threshold = 1e-4;
  private ThresholdMode thresholdMode = ThresholdMode.RELATIVE;
  private int cooldown;
  private double minLearningRate;

  private double best;
  private int badEpochs;
  private int cooldownLeft;
  private int epoch;

  /** Creates the schedule with PyTorch's defaults: factor 0.1, patience 10, threshold 1e-4. */
  public ReduceLROnPlateau(Optimizer optimizer, Mode mode) {
    this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
    this.mode = Objects.requireNonNull(mode, "mode");
    this.best = worst(mode);
  }

  private static double worst(Mode mode) {
    return mode == Mode.MIN ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY;
  }

  /** Sets the factor in [0, 1) that multiplies the learning rate at each cut (default 0.1). */
  public ReduceLROnPlateau factor(double factor) {
    if (!(factor >= 0 && factor < 1)) {
      throw new IllegalArgumentException(
          "ReduceLROnPlateau: factor must be in [0, 1), got " + factor);
    }
    this.factor = factor;
    return this;
  }

  /** Sets how many epochs without improvement are tolerated before a cut (default 10). */
  public ReduceLROnPlateau patience(int patience) {
    requireAtLeastZero("patience", patience);
    this.patience = patience;
    return this;
  }

  /** Sets the margin an improvement must exceed (default 1e-4, relative). */
  public ReduceLROnPlateau threshold(double threshold) {
    requireAtLeastZero("threshold", threshold);
    this.threshold = threshold;
    return this;
  }

  public ReduceLROnPlateau thresholdMode(ThresholdMode thresholdMode) {
    this.thresholdMode = Objects.requireNonNull(thresholdMode, "thresholdMode");
    return this;
  }

  /** Sets how many epochs after a cut ignore bad epochs (default 0). */
  public ReduceLROnPlateau cooldown(int cooldown) {
    requireAtLeastZero("cooldown", cooldown);
    this.cooldown = cooldown;
    return this;
  }

  /** Sets the learning rate below which no cut goes (default 0). */
  public ReduceLROnPlateau minLearningRate(double minLearningRate) {
    requireAtLeastZero("minLearningRate", minLearningRate);
    this.minLearningRate = minLearningRate;
    return this;
  }

  private static void requireAtLeastZero(String setting, int value) {
    if (value < 0) {
      throw new IllegalArgumentException(
          "ReduceLROnPlateau: " + setting + " must be >= 0, got " + value);
    }
  }

  private static void requireAtLeastZero(String setting, double value) {
    if (!(value >= 0)) {
      throw new IllegalArgumentException(
          "ReduceLROnPlateau: " + setting + " must be >= 0, got " + value);
    }
  }

  /** Records the metric of the epoch that just ended and cuts the learning rate if it is due. */
  public void step(double metric) {
    epoch++;
    if (isImprovement(metric)) {
      best = metric;
      badEpochs = 0;
    } else {
      badEpochs++;
    }

    if (cooldownLeft > 0) {
      cooldownLeft--;
      badEpochs = 0;
    }

    if (badEpochs > patience) {
      double current = optimizer.learningRate();
      double reduced = Math.max(current * factor, minLearningRate);
      if (current - reduced > MIN_CHANGE) {
        optimizer.setLearningRate(reduced);
      }
      cooldownLeft = cooldown;
      badEpochs = 0;
    }
  }

  private boolean isImprovement(double metric) {
    return switch (mode) {
      case MIN ->
          thresholdMode == ThresholdMode.RELATIVE
              ? metric < best * (1 - threshold)
              : metric < best - threshold;
      case MAX ->
          thresholdMode == ThresholdMode.RELATIVE
              ? metric > best * (1 + threshold)
              : metric > best + threshold;
    };
  }

  /** Returns the best metric so far, or the worst infinity before the first step. */
  public double best() {
    return best;
  }

  /**
   * Returns the count of epochs without improvement since the last improvement, cut or cooldown.
   */
  public int badEpochs() {
    return badEpochs;
  }

  /** Returns the number of {@link #step(double)} calls. */
  public int epoch() {
    return epoch;
  }

  /**
   * Returns the schedule's progress for a checkpoint: {@code best}, {@code num_bad_epochs}, {@code
   * cooldown_counter} and {@code last_epoch}. The settings are not included.
   */
  public Map<String, Double> state() {
    Map<String, Double> state = new LinkedHashMap<>();
    state.put("best", best);
    state.put("num_bad_epochs", (double) badEpochs);
    state.put("cooldown_counter", (double) cooldownLeft);
    state.put("last_epoch", (double) epoch);
    return state;
  }

  /**
   * Restores progress written by {@link #state()}. The optimizer's learning rate is restored with
   * the optimizer's own state dict.
   *
   * @throws IllegalArgumentException if an entry is missing or invalid
   */
  public void loadState(Map<String, Double> state) {
    double loadedBest = Schedules.require(state, "best", getClass());
    double loadedBad = Schedules.require(state, "num_bad_epochs", getClass());
    double loadedCooldown = Schedules.require(state, "cooldown_counter", getClass());
    double loadedEpoch = Schedules.require(state, "last_epoch", getClass());
    Schedules.requireCount("num_bad_epochs", loadedBad, getClass());
    Schedules.requireCount("cooldown_counter", loadedCooldown, getClass());
    Schedules.requireCount("last_epoch", loadedEpoch, getClass());

    best = loadedBest;
    badEpochs = (int) loadedBad;
    cooldownLeft = (int) loadedCooldown;
    epoch = (int) loadedEpoch;
  }
}
