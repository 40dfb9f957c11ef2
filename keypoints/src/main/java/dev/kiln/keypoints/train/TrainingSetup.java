package dev.kiln.keypoints.train;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.AdamW;
import dev.kiln.nn.optim.Optimizer;
import dev.kiln.nn.optim.SGD;
import dev.kiln.nn.optim.schedule.CosineAnnealingLR;
import dev.kiln.nn.optim.schedule.ReduceLROnPlateau;
import dev.kiln.nn.optim.schedule.StepLR;
import java.util.List;
import java.util.Locale;

/** Builds the optimizer and the schedule that a run's options name. */
public final class TrainingSetup {
  /** SGD's momentum; the common choice for CNNs. */
  private static final double SGD_MOMENTUM = 0.9;

  /** The optimizer names that {@link #optimizer} accepts, ignoring case. */
  private static final List<String> OPTIMIZERS = List.of("adam", "adamw", "sgd");

  /** The schedule names that {@link #schedule} accepts, ignoring case. */
  private static final List<String> SCHEDULES = List.of("cosine", "step", "plateau", "none");

  private TrainingSetup() {}

  /** Rejects an optimizer name that {@link #optimizer} does not build. */
  public static void requireOptimizerName(String name) {
    if (!OPTIMIZERS.contains(name.toLowerCase(Locale.ROOT))) {
      throw unknownOptimizer(name);
    }
  }

  /** Rejects a schedule name that {@link #schedule} does not build. */
  static void requireScheduleName(String name) {
    if (!SCHEDULES.contains(name.toLowerCase(Locale.ROOT))) {
      throw unknownSchedule(name);
    }
  }

  private static IllegalArgumentException unknownOptimizer(String name) {
    return new IllegalArgumentException(
        "unknown optimizer '" + name + "': use one of " + String.join(", ", OPTIMIZERS));
  }

  private static IllegalArgumentException unknownSchedule(String name) {
    return new IllegalArgumentException(
        "unknown schedule '" + name + "': use one of " + String.join(", ", SCHEDULES));
  }

  static Optimizer optimizer(TrainOptions options, List<Tensor> parameters) {
    return optimizer(
        options.optimizer(), options.learningRate(), options.weightDecay(), parameters);
  }

  /** Builds adam, adamw or sgd (with momentum 0.9) over {@code parameters}. */
  public static Optimizer optimizer(
      String name, double learningRate, double weightDecay, List<Tensor> parameters) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      case "adam" -> new Adam(parameters).learningRate(learningRate).weightDecay(weightDecay);
      case "adamw" -> new AdamW(parameters).learningRate(learningRate).weightDecay(weightDecay);
      case "sgd" ->
          new SGD(parameters, learningRate).momentum(SGD_MOMENTUM).weightDecay(weightDecay);
      default -> throw unknownOptimizer(name);
    };
  }

  /**
   * Builds the learning-rate schedule. cosine anneals to 1% of the initial rate over the run's
   * epochs. step divides the rate by 10 every s = max(1, epochs / 3) epochs (integer division),
   * before epochs s + 1, 2s + 1 and so on up to the last epoch: a 60-epoch run gets cuts before
   * epochs 21 and 41, and a 62-epoch run a third one before epoch 61. plateau divides the rate by
   * 10 after the 4th epoch in a row whose validation NME is not a new best, because its patience of
   * 3 allows 3 such epochs.
   */
  static Schedule schedule(TrainOptions options, Optimizer optimizer) {
    int epochs = options.epochs();
    return switch (options.schedule().toLowerCase(Locale.ROOT)) {
      case "cosine" ->
          Schedule.of(new CosineAnnealingLR(optimizer, epochs, 0.01 * options.learningRate()));
      case "step" -> Schedule.of(new StepLR(optimizer, Math.max(1, epochs / 3), 0.1));
      case "plateau" ->
          Schedule.of(
              new ReduceLROnPlateau(optimizer, ReduceLROnPlateau.Mode.MIN).factor(0.1).patience(3));
      case "none" -> Schedule.none();
      default -> throw unknownSchedule(options.schedule());
    };
  }
}
