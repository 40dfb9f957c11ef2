package dev.kiln.keypoints.doctor;

import dev.kiln.keypoints.train.EpochRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training doctor: runs the checks of {@link Check} on a training setup and ranks what it
 * finds, the most likely cause of a failing run first.
 *
 * <p>Each check can also be called on its own through {@link DataCheck}, {@link WiringCheck},
 * {@link StructureCheck}, {@link ModelCheck}, {@link ActivationCheck}, {@link OverfitCheck}, {@link
 * LearningRateCheck} and {@link BaselineCheck}. The checks that train or switch modes put the
 * weights, the batch norm statistics, the module modes, the optimizer state and the state of the
 * dropout layers' generators back afterwards. So each check starts from the same state whichever
 * checks ran before it, and a check run alone gives the same result as in a full examination.
 */
public final class Doctor {
  private static final Logger LOG = LoggerFactory.getLogger(Doctor.class);

  /**
   * Epochs after which {@link #stallReason} judges a run, and over which it takes the best loss.
   */
  public static final int STALL_EPOCHS = 3;

  /** Smallest fall of the training loss below epoch 1's mean loss that counts as learning. */
  public static final double STALL_FALL = 0.10;

  /**
   * Training steps before {@link #stallReason} compares the validation loss with the baseline of
   * the constant training shapes. A model needs steps, not epochs, to learn to use the image. The
   * default model at batch size 32 was at about that baseline after 84 steps on the full training
   * set and below it after 168; on 510 faces it got below it after 144 to 160 steps. 300 steps
   * leaves about twice that.
   */
  public static final int BASELINE_RULE_STEPS = 300;

  /** Codes of the findings which report that a trained model's loss sits at a baseline. */
  private static final Set<String> BASELINE_FAILURES =
      Set.of("loss-equals-zero-baseline", "loss-at-constant-baseline");

  private Doctor() {}

  /** Runs the checks that {@code input.options()} selects and returns the ranked report. */
  public static Report examine(DoctorInput input) {
    long start = System.nanoTime();
    Workbench bench = Workbench.of(input);
    List<Finding> findings = new ArrayList<>();
    var model = input.model();
    var batch = bench.trainBatches().getFirst();
    List<Check> planned =
        List.of(Check.values()).stream().filter(input.options().checks()::contains).toList();
    for (int index = 0; index < planned.size(); index++) {
      Check check = planned.get(index);
      if (input.options().pastDeadline()) {
        findings.add(stoppedAtDeadline(planned.subList(index, planned.size())));
        break;
      }
      Function<Workbench, List<Finding>> run =
          switch (check) {
            case DATA -> DataCheck::run;
            case BASELINES -> BaselineCheck::run;
            case WIRING -> WiringCheck::run;
            case STRUCTURE -> b -> StructureCheck.run(model);
            case OUTPUT_LAYER -> b -> ModelCheck.outputLayer(model, b.trainBatches());
            case ACTIVATIONS -> b -> ActivationCheck.run(model, batch);
            case MODES -> b -> ModelCheck.modes(model, batch);
            case INITIALIZATION -> b -> ModelCheck.initialization(model);
            case OVERFIT -> OverfitCheck::run;
            case LEARNING_RATE -> LearningRateCheck::run;
          };
      long checkStart = System.nanoTime();
      try {
        findings.addAll(run.apply(bench));
      } catch (DeadlineReached e) {
        findings.add(stoppedAtDeadline(planned.subList(index, planned.size())));
        break;
      } catch (RuntimeException e) {
        LOG.warn("doctor check {} failed", check, e);
        findings.add(
            new Finding(
                Severity.WARNING,
                "check-failed",
                Finding.SYMPTOM,
                "The "
                    + check.name().toLowerCase(java.util.Locale.ROOT)
                    + " check failed: "
                    + e.getMessage(),
                e.toString(),
                "Fix the error named in this finding; the other checks still ran.",
                null));
      }
      LOG.debug("doctor check {} took {} ms", check, (System.nanoTime() - checkStart) / 1_000_000);
    }
    if (!input.history().isEmpty()) {
      boolean atBaseline =
          findings.stream().anyMatch(finding -> BASELINE_FAILURES.contains(finding.code()));
      boolean collapsed =
          findings.stream().anyMatch(finding -> finding.code().equals("collapse-to-mean"));
      findings.replaceAll(finding -> judgeDeadReluAfterTraining(finding, atBaseline && collapsed));
    }
    Report report = new Report(findings, (System.nanoTime() - start) / 1e9);
    LOG.info("doctor found {} problems in {} s", report.problems().size(), report.seconds());
    return report;
  }

  /** Returns the finding that lists the checks that the deadline left out. */
  private static Finding stoppedAtDeadline(List<Check> notRun) {
    String names =
        String.join(
            ", ",
            notRun.stream().map(check -> check.name().toLowerCase(java.util.Locale.ROOT)).toList());
    return new Finding(
        Severity.WARNING,
        "deadline-reached",
        Finding.SYMPTOM,
        "The examination stopped at its deadline, so these checks did not finish: " + names + ".",
        notRun.size() + " of the selected checks left",
        "Examine the run again without a time limit, with kiln doctor --run.",
        null);
  }

  /**
   * Returns the dead-ReLU finding of a model that has trained, judged by whether the model uses the
   * image. Training often silences most units of a wide hidden layer of a model that works well:
   * the default model's first linear layer had 93% dead units after 3 epochs at a validation loss
   * well below the mean-shape baseline. So dead units are only information, unless {@code ignored}:
   * the model's loss sits at a baseline and its predictions barely vary across faces. Then dead
   * units explain why, because a layer that outputs 0 for every face passes nothing of the image
   * on. A wide model whose first Adam steps blew up ended with 98.8% dead units and one output
   * shape for every face. The finding is then critical, and as a measurement it ranks above the
   * symptoms. A model that is only slow, at a baseline but with predictions that follow the faces,
   * keeps it as information.
   */
  static Finding judgeDeadReluAfterTraining(Finding finding, boolean ignored) {
    if (!finding.code().equals("dead-relu")) {
      return finding;
    }
    if (!ignored) {
      return Finding.info(finding.code(), finding.title(), finding.evidence());
    }
    return new Finding(
        Severity.CRITICAL,
        finding.code(),
        finding.specificity(),
        finding.title()
            + " With the loss at a baseline and one predicted shape for every face, they are the"
            + " likely reason that the model ignores the image.",
        finding.evidence(),
        finding.fix(),
        finding.image());
  }

  /**
   * Returns why a run counts as stalled after the epochs of {@code history}, or an empty optional
   * where it is learning. It judges a run after {@link #STALL_EPOCHS} epochs, on these rules:
   *
   * <ul>
   *   <li>The training loss has not fallen: the best mean training loss of the last {@link
   *       #STALL_EPOCHS} epochs is not {@link #STALL_FALL} (10%) below epoch 1's mean loss. The
   *       rule compares with epoch 1's mean loss, not the first batch's, so a loss that drops over
   *       epoch 1's first batches and then stays flat counts as stalled. A run that learned over
   *       several epochs and then levels off, as every converging run does, does not count.
   *   <li>A validation loss of those epochs is not a number.
   *   <li>The model has learned nothing from the images: after at least {@link
   *       #BASELINE_RULE_STEPS} training steps, the best validation loss of the last {@link
   *       #STALL_EPOCHS} epochs is no lower than {@code constantShapeLoss}, the validation loss of
   *       always predicting the mean or the per-coordinate median training shape, whichever is
   *       lower. A model that ignores the image learns the mean under MSE and the median under L1,
   *       so comparing with the mean alone can miss it under L1. This catches a run whose first
   *       steps blew the loss up, so that epoch 1's mean is far above a plateau that the first rule
   *       then reads as progress. A NaN {@code constantShapeLoss} turns this rule off.
   * </ul>
   *
   * @param stepsPerEpoch the optimizer steps of one epoch, which the last rule counts
   */
  public static Optional<String> stallReason(
      List<EpochRecord> history, double constantShapeLoss, int stepsPerEpoch) {
    if (history.size() < STALL_EPOCHS) {
      return Optional.empty();
    }
    List<EpochRecord> recent = history.subList(history.size() - STALL_EPOCHS, history.size());
    double first = history.getFirst().trainLoss();
    double bestTraining = Double.POSITIVE_INFINITY;
    double bestValidation = Double.POSITIVE_INFINITY;
    for (EpochRecord record : recent) {
      if (Double.isNaN(record.trainLoss())) {
        return Optional.of("the training loss of epoch " + record.epoch() + " is not a number");
      }
      if (Double.isNaN(record.validationLoss())) {
        return Optional.of("the validation loss of epoch " + record.epoch() + " is not a number");
      }
      bestTraining = Math.min(bestTraining, record.trainLoss());
      bestValidation = Math.min(bestValidation, record.validationLoss());
    }
    if (!(bestTraining <= (1 - STALL_FALL) * first)) {
      return Optional.of(
          String.format(
              Locale.ROOT,
              "the training loss has not fallen %.0f%% below epoch 1's mean loss in %d epochs",
              100 * STALL_FALL,
              STALL_EPOCHS));
    }
    long steps = (long) history.size() * stepsPerEpoch;
    if (steps >= BASELINE_RULE_STEPS && bestValidation >= constantShapeLoss) {
      return Optional.of(
          String.format(
              Locale.ROOT,
              "after %d training steps, the best validation loss of the last %d epochs, %s, is no"
                  + " lower than %s, the loss of always predicting the mean or median training"
                  + " shape, whichever is lower",
              steps,
              STALL_EPOCHS,
              Stats.format(bestValidation),
              Stats.format(constantShapeLoss)));
    }
    return Optional.empty();
  }
}
