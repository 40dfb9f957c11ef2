package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.ConstantShapes;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.nn.loss.L1Loss;
import dev.kiln.nn.loss.Loss;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class DoctorStalledTest {
  /**
   * Constant-shape loss above the validation loss of {@link #history(double...)}, so that only the
   * training loss decides.
   */
  private static final double ABOVE_VALIDATION = 0.2;

  /** Epochs with these training losses and a validation loss of 0.1 each. */
  private static List<EpochRecord> history(double... trainLosses) {
    double[] validationLosses = new double[trainLosses.length];
    Arrays.fill(validationLosses, 0.1);
    return history(trainLosses, validationLosses);
  }

  private static List<EpochRecord> history(double[] trainLosses, double[] validationLosses) {
    List<EpochRecord> records = new ArrayList<>();
    for (int i = 0; i < trainLosses.length; i++) {
      records.add(
          new EpochRecord(i + 1, trainLosses[i], validationLosses[i], 0.1, 1e-3, 1, 100, 0));
    }
    return records;
  }

  @Test
  void stalledNeedsThreeEpochs() {
    assertEquals(Optional.empty(), stallReason(history(0.3, 0.3), ABOVE_VALIDATION));
  }

  @Test
  void stalledWhenLossStaysNearStart() {
    Optional<String> reason = stallReason(history(0.30, 0.31, 0.29, 0.30), ABOVE_VALIDATION);

    assertEquals(
        Optional.of("the training loss has not fallen 10% below epoch 1's mean loss in 3 epochs"),
        reason);
  }

  @Test
  void notStalledWhenLossFalls() {
    assertEquals(Optional.empty(), stallReason(history(0.30, 0.25, 0.20), ABOVE_VALIDATION));
  }

  @Test
  void notStalledWhenConvergedRunLevelsOff() {
    assertEquals(
        Optional.empty(),
        stallReason(history(0.18, 0.12, 0.10, 0.0290, 0.0289, 0.0290), ABOVE_VALIDATION));
  }

  @Test
  void stalledWhenLossIsNaN() {
    Optional<String> reason = stallReason(history(0.30, 0.29, Double.NaN), ABOVE_VALIDATION);

    assertEquals(Optional.of("the training loss of epoch 3 is not a number"), reason);
  }

  @Test
  void stalledWhenValidationLossIsNaN() {
    List<EpochRecord> broken =
        history(new double[] {0.30, 0.20, 0.10}, new double[] {0.2, Double.NaN, 0.1});

    Optional<String> reason = stallReason(broken, ABOVE_VALIDATION);

    assertEquals(Optional.of("the validation loss of epoch 2 is not a number"), reason);
  }

  /**
   * The losses of a wide model whose first Adam steps blew the training loss up to 3.9 in epoch 1.
   * The training loss then looks like it falls, while the validation loss stays far above what the
   * mean or median training shape gets.
   */
  @Test
  void stalledWhenValidationNeverBeatsConstantShape() {
    Optional<String> reason = stallReason(blownUp(), 0.0185);

    assertEquals(
        Optional.of(
            "after 400 training steps, the best validation loss of the last 3 epochs, 0.0862, is"
                + " no lower than 0.0185, the loss of always predicting the mean or median training"
                + " shape, whichever is lower"),
        reason);
  }

  /** A model needs steps, not epochs, to beat a constant shape, so short epochs are not judged. */
  @Test
  void constantShapeRuleWaitsForEnoughSteps() {
    int stepsPerEpoch = (Doctor.BASELINE_RULE_STEPS - 1) / 4;

    assertTrue(Doctor.stallReason(blownUp(), 0.0185, stepsPerEpoch).isEmpty());
  }

  @Test
  void constantShapeRuleOffWithoutShapes() {
    assertTrue(stallReason(blownUp(), Double.NaN).isEmpty());
  }

  @Test
  void notStalledOnceValidationBeatsConstantShape() {
    List<EpochRecord> learning =
        history(new double[] {3.907, 0.130, 0.113}, new double[] {0.0958, 0.0871, 0.0180});

    assertTrue(stallReason(learning, 0.0185).isEmpty());
  }

  /** Judges {@code history} with 100 steps per epoch, enough for every rule after 3 epochs. */
  private static Optional<String> stallReason(List<EpochRecord> history, double constantShapeLoss) {
    return Doctor.stallReason(history, constantShapeLoss, 100);
  }

  /**
   * Skewed targets of one coordinate, 0, 0, 0, 1 and 4: their mean is 1 and their median 0. Under
   * L1 the mean shape's loss is (1 + 1 + 1 + 0 + 3) / 5 = 1.2, and the median shape's is (0 + 0 + 0
   * + 1 + 4) / 5 = 1.0. A model that ignores the image learns the median under L1, so its loss of
   * 1.0 lies below the mean-shape baseline, yet the run has stalled.
   */
  @Test
  void stalledWhenL1ModelPredictsMedian() {
    float[] values = {0, 0, 0, 1, 4};
    Tensor targets = Tensor.of(values, values.length, 1);
    Batch batch =
        new Batch(
            Tensor.zeros(DType.FLOAT32, values.length, 1, 2, 2),
            targets,
            List.of("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"));
    ConstantShapes shapes = ConstantShapes.of(List.of(batch));
    Loss l1 = new L1Loss();
    double modelLoss = ConstantShapes.loss(targets, shapes.median(), l1);
    List<EpochRecord> collapsed =
        history(new double[] {3.9, 1.3, 1.1, 1.0}, new double[] {1.5, 1.1, modelLoss, modelLoss});

    assertEquals(1.2, ConstantShapes.loss(targets, shapes.mean(), l1), 1e-6);
    assertEquals(1.0, modelLoss, 1e-6);
    assertTrue(stallReason(collapsed, 1.2).isEmpty(), "the mean-shape baseline alone misses it");
    assertEquals(1.0, shapes.lowestLoss(targets, l1), 1e-6);
    assertEquals(
        Optional.of(
            "after 400 training steps, the best validation loss of the last 3 epochs, 1.00, is no"
                + " lower than 1.00, the loss of always predicting the mean or median training"
                + " shape, whichever is lower"),
        stallReason(collapsed, shapes.lowestLoss(targets, l1)));
  }

  private static List<EpochRecord> blownUp() {
    return history(
        new double[] {3.907, 0.130, 0.113, 0.107}, new double[] {0.0958, 0.0871, 0.0881, 0.0862});
  }

  @Test
  void deadReluIsInformationWhenTrainedModelWorks() {
    Finding judged = Doctor.judgeDeadReluAfterTraining(deadRelu(), false);

    assertEquals(Severity.INFO, judged.severity());
    assertEquals("dead-relu", judged.code());
  }

  @Test
  void deadReluIsCriticalWhenModelIgnoresImage() {
    Finding judged = Doctor.judgeDeadReluAfterTraining(deadRelu(), true);

    assertEquals(Severity.CRITICAL, judged.severity());
    assertTrue(judged.title().contains("likely reason that the model ignores"), judged.title());
    assertEquals(deadRelu().evidence(), judged.evidence());
  }

  @Test
  void otherFindingsKeepTheirSeverity() {
    Finding other = new Finding(Severity.WARNING, "x", Finding.CAUSE, "t", "e", "f", null);

    assertEquals(other, Doctor.judgeDeadReluAfterTraining(other, true));
  }

  private static Finding deadRelu() {
    return new Finding(
        Severity.WARNING,
        "dead-relu",
        Finding.MEASURED,
        "Over half of the units of 1 ReLU layer output 0 for every face of one 32-face batch.",
        "dead units: 4 ReLU 98.8%",
        "Lower the learning rate.",
        null);
  }
}
