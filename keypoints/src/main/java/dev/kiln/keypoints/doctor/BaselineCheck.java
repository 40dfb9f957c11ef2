package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.train.MeanShape;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import java.util.List;

/**
 * Places the model's validation loss against two baselines: a model that always outputs zero and
 * one that always outputs the mean training shape.
 *
 * <p>All three losses are measured on the same faces, the workbench's validation batches, so that
 * the {@link #SAME_LOSS} margin compares like with like. A run's recorded validation loss covers
 * the whole validation set, whose mean can differ from that of a few sampled batches by more than
 * the margin, so it is not used here.
 *
 * @param zeroLoss validation loss of the all-zero output
 * @param meanShapeLoss validation loss of the mean training shape
 * @param modelLoss validation loss of the model with its current weights, in evaluation mode
 */
public record BaselineCheck(double zeroLoss, double meanShapeLoss, double modelLoss) {

  /** Relative distance below which a loss counts as equal to a baseline. */
  static final double SAME_LOSS = 0.03;

  /**
   * Measures the baselines and the model's loss, in evaluation mode, on the workbench's validation
   * batches.
   */
  static BaselineCheck measure(Workbench bench) {
    Loss loss = bench.input().loss();
    Tensor meanShape = meanTarget(bench.trainEvaluationBatches());
    double zero = 0;
    double mean = 0;
    int faces = 0;
    try (var _ = GradMode.noGrad()) {
      for (Batch batch : bench.validationBatches()) {
        Tensor targets = batch.targets();
        int[] shape = targets.shape();
        zero += loss.compute(Tensor.zeros(targets.dtype(), shape), targets).item() * batch.size();
        mean += loss.compute(meanShape.expand(shape), targets).item() * batch.size();
        faces += batch.size();
      }
    }
    Sequential model = bench.input().model();
    boolean training = model.isTraining();
    model.eval();
    double modelLoss;
    try {
      modelLoss = bench.meanLoss(bench.validationBatches());
    } finally {
      model.train(training);
    }
    return new BaselineCheck(zero / faces, mean / faces, modelLoss);
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
            + Stats.format(meanShapeLoss);
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
    if (modelLoss >= (1 - SAME_LOSS) * meanShapeLoss) {
      return List.of(
          new Finding(
              Severity.WARNING,
              "loss-at-mean-baseline",
              Finding.SYMPTOM,
              "The model is no better than always predicting the average face.",
              evidence,
              "The model does not use the image yet: check the other findings, and train until"
                  + " the loss falls clearly below the mean-shape baseline.",
              null),
          info);
    }
    return List.of(info);
  }

  /** Returns the mean target of the batches, shaped [1, width]. */
  static Tensor meanTarget(List<Batch> batches) {
    MeanShape shape = new MeanShape();
    batches.forEach(shape::add);
    float[] mean = shape.mean();
    return Tensor.of(mean, 1, mean.length);
  }
}
