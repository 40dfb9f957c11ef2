package dev.kiln.nn.optim.schedule;

import dev.kiln.nn.optim.Optimizer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Base of the epoch-based learning-rate schedules: each computes the learning rate of an epoch in
 * closed form from the optimizer's learning rate at construction (the base rate).
 *
 * <p>As in PyTorch, construction counts as epoch 0 and leaves the base rate in place, and each
 * {@link #step()}, called once at the end of every epoch, moves to the next epoch and sets the
 * optimizer's learning rate for it. {@link ReduceLROnPlateau} is not a subclass because its step
 * needs a metric.
 */
public abstract class LrScheduler {
  private static final String LAST_EPOCH = "last_epoch";
  private static final String BASE_LR = "base_lr";

  private final Optimizer optimizer;
  private double baseLearningRate;
  private int epoch;

  /** Creates a schedule whose base rate is the optimizer's current learning rate. */
  protected LrScheduler(Optimizer optimizer) {
    this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
    this.baseLearningRate = optimizer.learningRate();
  }

  /** Returns the learning rate of {@code epoch} (0 or more) under this schedule. */
  public abstract double learningRateAt(int epoch);

  /** Moves to the next epoch and sets the optimizer's learning rate for it. */
  public final void step() {
    epoch++;
    optimizer.setLearningRate(learningRateAt(epoch));
  }

  /** Returns the current epoch: 0 after construction, then the number of {@link #step()} calls. */
  public int epoch() {
    return epoch;
  }

  /** Returns the learning rate of epoch 0. */
  public double baseLearningRate() {
    return baseLearningRate;
  }

  public Optimizer optimizer() {
    return optimizer;
  }

  /**
   * Returns the schedule's position for a checkpoint: {@code last_epoch} and {@code base_lr}. As in
   * PyTorch, the learning rate itself is saved with the optimizer's state dict.
   */
  public Map<String, Double> state() {
    Map<String, Double> state = new LinkedHashMap<>();
    state.put(LAST_EPOCH, (double) epoch);
    state.put(BASE_LR, baseLearningRate);
    return state;
  }

  /**
   * Restores a position written by {@link #state()}. The optimizer's learning rate is not changed,
   * so load the optimizer's state dict too.
   *
   * @throws IllegalArgumentException if an entry is missing or invalid
   */
  public void loadState(Map<String, Double> state) {
    double loadedEpoch = Schedules.require(state, LAST_EPOCH, getClass());
    double loadedBase = Schedules.require(state, BASE_LR, getClass());
    Schedules.requireCount(LAST_EPOCH, loadedEpoch, getClass());
    if (!(loadedBase >= 0)) {
      throw new IllegalArgumentException(
          getClass().getSimpleName() + ": base_lr must be >= 0, got " + loadedBase);
    }

    epoch = (int) loadedEpoch;
    baseLearningRate = loadedBase;
  }

  /** Rejects a negative epoch, naming the schedule. */
  protected final void requireEpoch(int epoch) {
    if (epoch < 0) {
      throw new IllegalArgumentException(
          getClass().getSimpleName() + ": epoch must be >= 0, got " + epoch);
    }
  }
}
