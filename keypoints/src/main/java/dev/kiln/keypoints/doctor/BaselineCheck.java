package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.ConstantShapes;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import java.util.List;

/**
 * Places the model's validation loss against the baselines of a model that always outputs zero, and
 * of one that always outputs the mean or the per-coordinate median training shape. A model that
 * ignores the image learns the mean under MSE and the median under L1, so it has to beat the lower
 * of the two.
 *
 * <p>All the losses are measured on the same faces, the workbench's validation batches, so that the
 * {@link #SAME_LOSS} margin compares like with like. A run's recorded validation loss covers the
 * whole validation set, whose mean can differ from that of a few sampled batches by more than the
 * margin, so it is not used here.
 *
 * @param zeroLoss validation loss of the all-zero output
 * @param meanShapeLoss validation loss of the mean training shape
 * @param medianShapeLoss validation loss of the per-coordinate median training shape
 * @param modelLoss validation loss of the model with its current weights, in evaluation mode
 */
public record BaselineCheck(
    double zeroLoss, double meanShapeLoss, double medianShapeLoss, double modelLoss) {

  /** Relative distance below which a loss counts as equal to a baseline. */
  static final double SAME_LOSS = 0.03;

  /**
   * Measures the baselines and the model's loss, in evaluation mode, on the workbench's validation
   * batches.
   */
  static BaselineCheck measure(Workbench bench) {
    Loss loss = bench.input().loss();
    ConstantShapes shapes = ConstantShapes.of(bench.trainEvaluationBatches());
    float[] meanShape = shapes.mean();
    float[] medianShape = shapes.median();
    double zero = 0;
    double mean = 0;
    double median = 0;
    int faces = 0;
    try (var _ = GradMode.noGrad()) {
      for (Batch batch : bench.validationBatches()) {
        Tensor targets = batch.targets();
        Tensor zeros = Tensor.zeros(targets.dtype(), targets.shape());
        zero += loss.compute(zeros, targets).item() * batch.size();
        mean += ConstantShapes.loss(targets, meanShape, loss) * batch.size();
        median += ConstantShapes.loss(targets, medianShape, loss) * batch.size();
        faces += batch.size();
      }
    }
    Sequential model = bench.input().model();
    // Restored module by module: model.train() would switch every layer to the model's mode, and
    // so hide a layer left in the other mode from the modes check that runs later.
    ModelState state = ModelState.capture(model, null);
    model.eval();
    double modelLoss;
    try {
      modelLoss = bench.meanLoss(bench.validationBatches());
    } finally {
      state.restore();
    }
    return new BaselineCheck(zero / faces, mean / faces, median / faces, modelLoss);
  }

  /**
   * Returns the lower of the mean-shape and the median-shape loss, the baseline a model must beat.
   */
  public double constantShapeLoss() {
    return Math.min(meanShapeLoss, medianShapeLoss);
  }

  /** Returns the findings of {@link #measure}. */
  static List<Finding> run(Workbench bench) {
    List<EpochRecord> history = bench.input().history();
    return measure(bench).findings(history.isEmpty() ? 0 : history.getLast().epoch());
  }

  /**
   * Returns the findings for these losses, measured after {@code epochs} epochs of training. Only a
   * model that has trained is judged, because an untrained model is expected to sit at a baseline.
   */
  public List<Finding> findings(int epochs) {
    boolean trained = epochs > 0;
    String evidence =
        "loss on the sampled validation faces: model "
            + Stats.format(modelLoss)
            + (trained ? " (after epoch " + epochs + ")" : " (before training)")
            + ", zero output "
            + Stats.format(zeroLoss)
            + ", mean training shape "
            + Stats.format(meanShapeLoss)
            + ", median training shape "
            + Stats.format(medianShapeLoss);
    Finding info = Finding.info("baselines", "Loss against the baselines.", evidence);
    if (!trained) {
      return List.of(info);
    }
    if (Math.abs(modelLoss - zeroLoss) <= SAME_LOSS * zeroLoss) {
      return List.of(
          new Finding(
              Severity.CRITICAL,
              "loss-equals-zero-baseline",
              Finding.SYMPTOM,
              "The loss equals the zero-output baseline, so the model's output is not changing.",
              evidence,
              "Look at the other findings for the cause; an output activation or an optimizer"
                  + " that does not hold the model's parameters are the common ones.",
              null),
          info);
    }
    if (modelLoss >= (1 - SAME_LOSS) * constantShapeLoss()) {
      return List.of(
          new Finding(
              Severity.WARNING,
              "loss-at-constant-baseline",
              Finding.SYMPTOM,
              "The model is no better than always predicting the same face shape.",
              evidence,
              "The model does not use the image yet: check the other findings, and train until"
                  + " the loss falls clearly below both the mean-shape and the median-shape"
                  + " baseline.",
              null),
          info);
    }
    return List.of(info);
  }
}
