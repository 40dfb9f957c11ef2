package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.ConstantShapes;
import dev.kiln.nn.Module;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;
import dev.kiln.nn.optim.SGD;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Trains on one batch with the run's optimizer and loss, and reports how far the loss falls. A
 * working setup memorizes one batch quickly, so a loss that stays up means that something between
 * the data, the model and the optimizer is broken. Afterwards it compares the spread of the
 * predictions across the faces with the spread of the targets, to catch a collapse to one shape.
 *
 * <p>The test trains in the model's current mode, which is training mode for a run, so dropout
 * stays on. A model with strong dropout may fail to memorize the batch for that reason alone, and
 * the evidence notes when dropout was on.
 */
public final class OverfitCheck {
  /** Ratio of the lowest loss to the first below which the batch counts as memorized. */
  static final double FITTED_RATIO = 0.2;

  /**
   * Share of the constant-shape baseline's loss, the lower of the batch's mean-shape and
   * median-shape loss, below which the batch counts as memorized.
   */
  static final double FITTED_BASELINE_SHARE = 0.25;

  /** Ratio of the lowest loss to the first above which the model counts as not learning at all. */
  static final double STUCK_RATIO = 0.6;

  /** Prediction-to-target spread ratio below which the predictions count as collapsed. */
  static final double COLLAPSED_SPREAD = 0.25;

  /**
   * Share of a layer's weight standard deviation at the start of the one-batch test below which
   * weight decay counts as erasing the weights, when the batch was not memorized. With kiln doctor
   * --limit 300 on a LeNet-like model with mse and Adam at 1e-3, weight decay 100 left every layer
   * 0.0% to 2.7% of its spread and the test failed. Weight decay 1e-4 left the largest layer 12%
   * and the test passed, because Adam moves weights whose loss gradient is near 0 towards 0 at
   * about the learning rate per step, which does not stop the model from fitting.
   */
  static final double SHRUNK_SPREAD = 0.5;

  private OverfitCheck() {}

  /** Runs the one-batch test, then restores the model and the optimizer. */
  static List<Finding> run(Workbench bench) {
    DoctorInput input = bench.input();
    ModelState state = ModelState.capture(input.model(), input.optimizer());
    try {
      return examine(input, bench.trainBatches().getFirst(), input.options().overfitSteps());
    } finally {
      state.restore();
    }
  }

  /** Returns the finding of a loss that became {@code value}, {@code when} ("at step 3"). */
  private static List<Finding> diverged(double value, String when, double first) {
    return List.of(
        new Finding(
            Severity.CRITICAL,
            "overfit-diverged",
            Finding.SYMPTOM,
            "Training on one batch made the loss " + value + " " + when + ".",
            "loss at step 1: " + Stats.format(first),
            "Lower the learning rate, and check the other findings for the cause.",
            null));
  }

  /** Returns the finding of a loss that is {@code value} before the first step. */
  private static List<Finding> notFiniteBeforeTraining(double value) {
    return List.of(
        new Finding(
            Severity.CRITICAL,
            "overfit-diverged",
            Finding.SYMPTOM,
            "The loss on one batch is " + value + " before the first training step.",
            "loss at step 1, before any update: " + value,
            "No learning rate causes this. Find the layer whose output is not finite, and check"
                + " the other findings for the cause.",
            null));
  }

  private static List<Finding> examine(DoctorInput input, Batch batch, int steps) {
    double constantShapeLoss =
        ConstantShapes.of(List.of(batch)).lowestLoss(batch.targets(), input.loss());
    double weightDecay = weightDecay(input.optimizer());
    Map<String, Double> startSpreads = weightDecay > 0 ? weightSpreads(input.model()) : Map.of();
    double first = Double.NaN;
    double best = Double.POSITIVE_INFINITY;
    for (int step = 1; step <= steps; step++) {
      DeadlineReached.check(input.options());
      input.optimizer().zeroGrad();
      Tensor loss = input.loss().compute(input.model().forward(batch.images()), batch.targets());
      double value = loss.item();
      if (!Double.isFinite(value) && step == 1) {
        return notFiniteBeforeTraining(value);
      }
      if (!Double.isFinite(value)) {
        return diverged(value, "at step " + step, first);
      }
      if (step == 1) {
        first = value;
      }
      best = Math.min(best, value);
      loss.backward();
      try {
        input.optimizer().step();
      } catch (IllegalStateException e) {
        return List.of(
            new Finding(
                Severity.CRITICAL,
                "overfit-failed",
                Finding.SYMPTOM,
                "The optimizer could not take a step on one batch.",
                e.getMessage(),
                "Fix the other findings about the optimizer, the parameters and their gradients.",
                null));
      }
    }
    // Each loss above is measured before its step, so one more pass measures the last step's.
    double last;
    try (var _ = GradMode.noGrad()) {
      last = input.loss().compute(input.model().forward(batch.images()), batch.targets()).item();
    }
    if (!Double.isFinite(last)) {
      return diverged(last, "after step " + steps, first);
    }
    best = Math.min(best, last);
    double ratio = best / first;
    double spread = spreadRatio(input, batch);
    String evidence =
        "loss on one batch of "
            + batch.size()
            + " faces: "
            + Stats.format(first)
            + " at step 1, "
            + Stats.format(last)
            + " after the last of "
            + Stats.count(steps, "step")
            + ", lowest "
            + Stats.format(best)
            + " (lowest / first "
            + Stats.format(ratio)
            + "); always predicting the batch's mean or median shape, whichever is lower, gives "
            + Stats.format(constantShapeLoss)
            + "; spread of the predictions across faces / spread of the targets: "
            + Stats.format(spread)
            + (dropoutOn(input.model()) ? "; dropout is on during this test" : "");
    List<Finding> findings = new ArrayList<>();
    // A trained model starts the test near its best loss, so the ratio means little; reaching a
    // small fraction of the constant-shape baseline shows that it fits faces all the same. A model
    // that never beats the batch's own mean or median shape has memorized nothing, however far its
    // loss fell, because an untrained model with widely spread outputs can start far above that
    // baseline.
    boolean beatConstantShape = best < constantShapeLoss;
    boolean fitted = ratio <= FITTED_RATIO || best <= FITTED_BASELINE_SHARE * constantShapeLoss;
    if (!fitted || !beatConstantShape) {
      boolean stuck = ratio > STUCK_RATIO || !beatConstantShape;
      findings.add(
          new Finding(
              stuck ? Severity.CRITICAL : Severity.WARNING,
              "overfit-one-batch",
              Finding.SYMPTOM,
              "The model cannot memorize one batch: in "
                  + steps
                  + " steps the loss "
                  + (beatConstantShape
                      ? "fell no lower than " + Stats.percent(ratio) + " of its first value."
                      : "stayed at or above "
                          + Stats.format(constantShapeLoss)
                          + ", the loss of always predicting the batch's mean or median shape,"
                          + " whichever is lower."),
              evidence,
              last > first
                  ? "The loss ended above its first value, which a learning rate too high causes:"
                      + " lower it, and look at the other findings for other causes."
                  : "A working setup memorizes one batch quickly; look at the other findings for"
                      + " the cause.",
              null));
      if (spread < COLLAPSED_SPREAD) {
        findings.add(
            new Finding(
                Severity.WARNING,
                "collapse-to-mean",
                Finding.SYMPTOM,
                "The predictions collapse to one shape: they vary across faces only "
                    + Stats.percent(spread)
                    + " as much as the targets do.",
                evidence,
                "The model ignores the image; look at the other findings for the cause.",
                null));
      }
    }
    if (weightDecay > 0) {
      boolean memorized = fitted && beatConstantShape;
      findings.addAll(shrunkWeights(input, weightDecay, steps, startSpreads, memorized));
    }
    findings.add(Finding.info("overfit", "One-batch test.", evidence));
    return findings;
  }

  /**
   * Returns the weight decay of {@code optimizer}, or 0 for an optimizer without one. Adam and SGD
   * add it to the gradient as an L2 term, and AdamW shrinks the weights by it directly.
   */
  static double weightDecay(Optimizer optimizer) {
    return switch (optimizer) {
      case Adam adam -> adam.weightDecay();
      case SGD sgd -> sgd.weightDecay();
      default -> 0;
    };
  }

  /** Returns the standard deviation of each weight of Linear and Conv2d layers, by name. */
  private static Map<String, Double> weightSpreads(Module model) {
    Map<String, Double> spreads = new LinkedHashMap<>();
    for (var entry : model.namedParameters().entrySet()) {
      if (entry.getValue().dim() >= 2) {
        spreads.put(entry.getKey(), Stats.of(entry.getValue().toFloatArray()).std());
      }
    }
    return spreads;
  }

  /**
   * Flags weight decay that shrank the standard deviation of a layer's weights below {@link
   * #SHRUNK_SPREAD} of its start within a one-batch test that failed. Only the evidence is reported
   * when the batch was {@code memorized}, because the decay then did not stop the fit.
   */
  private static List<Finding> shrunkWeights(
      DoctorInput input,
      double weightDecay,
      int steps,
      Map<String, Double> startSpreads,
      boolean memorized) {
    Map<String, Double> endSpreads = weightSpreads(input.model());
    List<String> shrunk = new ArrayList<>();
    List<String> table = new ArrayList<>();
    for (var entry : startSpreads.entrySet()) {
      double start = entry.getValue();
      double end = endSpreads.get(entry.getKey());
      String line =
          entry.getKey()
              + " "
              + Stats.format(start)
              + " to "
              + Stats.format(end)
              + " ("
              + Stats.percent(end / start)
              + ")";
      table.add(line);
      if (end < SHRUNK_SPREAD * start) {
        shrunk.add(entry.getKey());
      }
    }
    String evidence =
        "weight decay "
            + Stats.format(weightDecay)
            + " ("
            + input.optimizer().getClass().getSimpleName()
            + "); standard deviation of the weights from step 1 to the end of the one-batch test: "
            + String.join(", ", table);
    if (shrunk.isEmpty() || memorized) {
      return List.of(Finding.info("weight-decay", "Weight decay in the one-batch test.", evidence));
    }
    return List.of(
        new Finding(
            Severity.CRITICAL,
            "weight-decay-too-high",
            Finding.CAUSE,
            "Weight decay "
                + Stats.format(weightDecay)
                + " erases the weights: in the "
                + Stats.count(steps, "step")
                + " of the failed one-batch test the spread of the weights of "
                + Stats.count(shrunk.size(), "layer")
                + " fell below "
                + Stats.percent(SHRUNK_SPREAD)
                + " of its start.",
            evidence,
            "Lower the weight decay (--weight-decay), or set it to 0 to turn it off; PyTorch's"
                + " AdamW defaults to 0.01.",
            null));
  }

  /** Returns true when a dropout layer of {@code model} is in training mode. */
  private static boolean dropoutOn(Module model) {
    for (Module module : ModelState.modules(model)) {
      if (module instanceof Dropout && module.isTraining()) {
        return true;
      }
    }
    return false;
  }

  /** Returns the mean over coordinates of the prediction spread across faces, over the targets'. */
  private static double spreadRatio(DoctorInput input, Batch batch) {
    float[] predictions;
    try (var _ = GradMode.noGrad()) {
      predictions = input.model().forward(batch.images()).toFloatArray();
    }
    float[] targets = batch.targets().toFloatArray();
    return columnSpread(predictions, batch.size()) / columnSpread(targets, batch.size());
  }

  private static double columnSpread(float[] values, int rows) {
    int width = values.length / rows;
    double total = 0;
    for (int j = 0; j < width; j++) {
      double sum = 0;
      for (int i = 0; i < rows; i++) {
        sum += values[i * width + j];
      }
      double mean = sum / rows;
      double squares = 0;
      for (int i = 0; i < rows; i++) {
        squares += (values[i * width + j] - mean) * (values[i * width + j] - mean);
      }
      total += Math.sqrt(squares / rows);
    }
    return total / width;
  }
}
