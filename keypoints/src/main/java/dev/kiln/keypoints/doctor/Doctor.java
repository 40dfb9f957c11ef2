package dev.kiln.keypoints.doctor;

import dev.kiln.keypoints.train.EpochRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training doctor: runs the checks of {@link Check} on a training setup and ranks what it
 * finds, the most likely cause of a failing run first.
 *
 * <p>Each check can also be called on its own through {@link DataCheck}, {@link WiringCheck},
 * {@link ModelCheck}, {@link ActivationCheck}, {@link OverfitCheck}, {@link LearningRateCheck} and
 * {@link BaselineCheck}. The checks that train put the weights, the batch norm statistics, the
 * module modes and the optimizer state back afterwards.
 */
public final class Doctor {
  private static final Logger LOG = LoggerFactory.getLogger(Doctor.class);

  /** Epochs after which {@link #stalled} judges a run, and over which it takes the best loss. */
  public static final int STALL_EPOCHS = 3;

  /** Smallest fall of the training loss below epoch 1's mean loss that counts as learning. */
  public static final double STALL_FALL = 0.10;

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
      findings.replaceAll(Doctor::demoteForTrainedModel);
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
   * Returns dead ReLUs as information for a model that has trained: training often silences many
   * units of a wide hidden layer while the model works well, but at initialization they mean a bad
   * start.
   */
  private static Finding demoteForTrainedModel(Finding finding) {
    return finding.code().equals("dead-relu")
        ? Finding.info(finding.code(), finding.title(), finding.evidence())
        : finding;
  }

  /**
   * Returns true when a run's training loss has not fallen: after {@link #STALL_EPOCHS} epochs, the
   * best mean training loss of the last {@link #STALL_EPOCHS} epochs is not {@link #STALL_FALL}
   * (10%) below epoch 1's mean loss, or one of those losses is not a number. The test compares with
   * epoch 1's mean loss, not the first batch's, so a loss that drops over epoch 1's first batches
   * and then stays flat counts as stalled. A run that learned over several epochs and then levels
   * off, as every converging run does, does not count.
   */
  public static boolean stalled(List<EpochRecord> history) {
    if (history.size() < STALL_EPOCHS) {
      return false;
    }
    double first = history.getFirst().trainLoss();
    double recentBest = Double.POSITIVE_INFINITY;
    for (EpochRecord record : history.subList(history.size() - STALL_EPOCHS, history.size())) {
      if (Double.isNaN(record.trainLoss())) {
        return true;
      }
      recentBest = Math.min(recentBest, record.trainLoss());
    }
    return !(recentBest <= (1 - STALL_FALL) * first);
  }
}
