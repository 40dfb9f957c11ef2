package dev.kiln.keypoints.train;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.doctor.Deadline;
import dev.kiln.keypoints.doctor.Doctor;
import dev.kiln.keypoints.doctor.DoctorInput;
import dev.kiln.keypoints.doctor.DoctorOptions;
import dev.kiln.keypoints.doctor.Report;
import dev.kiln.keypoints.io.AtomicFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.Function;

/**
 * The trainer's automatic doctor: examines a run whose loss has stalled, prints the findings and
 * writes {@code doctor.md} into the run folder.
 *
 * <p>The examination is advice, so it never changes the run. The doctor's checks build their
 * batches on the CPU, so the model of a run on another device moves to the CPU for the examination
 * and back afterwards. The checks draw dropout masks from the run's generator and put its state
 * back after each check. The examination also restores that state once it ends, so that the run
 * goes on with the draws it would have made without the doctor, whatever a check does. The weights
 * and the optimizer's state are reloaded from the {@code last.safetensors} that the epoch wrote,
 * because a check that fails can leave them half restored. An examination that reaches the end of
 * the run's time limit stops there, with a finding that names the checks left out. A failed
 * examination does not end training: {@code doctor.md} then records the failure, so that a resumed
 * run does not examine the run again.
 */
final class StallExamination {
  private final TrainOptions options;
  private final Path run;
  private final Device device;
  private final PrintWriter out;
  private final Function<DoctorInput, Report> doctor;

  /**
   * Creates the examination of the run in {@code run} on {@code device}. The {@code doctor} is
   * {@link Doctor#examine} except in tests.
   */
  StallExamination(
      TrainOptions options,
      Path run,
      Device device,
      PrintWriter out,
      Function<DoctorInput, Report> doctor) {
    this.options = options;
    this.run = run;
    this.device = device;
    this.out = out;
    this.doctor = doctor;
  }

  /**
   * Examines the run after {@code epoch}, whose checkpoint {@code last.safetensors} is written, and
   * first prints {@code reason}, why the run counts as stalled. The examination stops at {@code
   * deadline}, the end of the run's time limit, or runs to its end where that is null.
   */
  void examine(TrainingParts parts, int epoch, String reason, Deadline deadline)
      throws IOException {
    out.println(reason + "; running the doctor" + (device.isCpu() ? "" : " on the CPU"));
    long[] generatorState = parts.generator().state();
    Report report = null;
    String failure = null;
    try {
      parts.model().to(Device.CPU);
      // The checks judge the rate that the run was given, as kiln doctor --run does. Every
      // schedule starts at --lr and only lowers it, so --lr is the value to change. The scheduled
      // rate of a late epoch can lie far below any rate that the range test suggests. The
      // checkpoint that is loaded afterwards puts the scheduled rate back.
      double scheduled = parts.optimizer().learningRate();
      parts.optimizer().setLearningRate(options.learningRate());
      report = doctor.apply(input(parts, epoch, rateSource(scheduled), deadline));
    } catch (RuntimeException | OutOfMemoryError e) {
      // The checks hold a few batches and copies of the weights, all released by now, so the run
      // can go on after running out of memory here.
      failure = e.toString();
    } finally {
      parts.generator().setState(generatorState);
      parts.model().to(device);
      Checkpoint checkpoint = Checkpoint.read(run.resolve(Trainer.LAST));
      checkpoint.loadModel(parts.model());
      checkpoint.loadOptimizer(parts.optimizer());
    }
    try {
      if (report != null) {
        out.print(report.toText());
        out.println("wrote " + report.write(run));
      } else {
        writeFailure(epoch, failure);
        out.println("the doctor failed, and training goes on: " + failure);
      }
    } catch (IOException e) {
      out.println("warning: cannot write the doctor's report to " + run + " (" + e + ")");
    }
  }

  /** Describes the learning rate that the checks use, with {@code scheduled} where it differs. */
  private String rateSource(double scheduled) {
    String source = "--lr of this run";
    if (scheduled == options.learningRate()) {
      return source;
    }
    return String.format(
        Locale.ROOT,
        "%s; its %s schedule stands at %.3g after this epoch",
        source,
        options.schedule(),
        scheduled);
  }

  /** Returns the doctor's view of the run, with the generator of its own draws. */
  private DoctorInput input(
      TrainingParts parts, int epoch, String learningRateSource, Deadline deadline) {
    return new DoctorInput(
        parts.model(),
        parts.optimizer(),
        parts.loss(),
        parts.trainingFaces(),
        parts.trainPipeline(),
        parts.validationFaces(),
        parts.evaluationPipeline(),
        parts.normalization(),
        parts.collate(),
        new Generator(options.seed() + epoch),
        parts.history().records(),
        DoctorOptions.defaults()
            // The doctor's statistics need at least 2 faces per batch.
            .withBatchSize(Math.max(2, options.batchSize()))
            .withOutput(run)
            .withLearningRateSource(learningRateSource)
            .withDeadline(deadline));
  }

  /** Writes a {@code doctor.md} that records the failure and how to examine the run by hand. */
  private void writeFailure(int epoch, String failure) throws IOException {
    AtomicFiles.writeString(
        run.resolve(Report.FILE_NAME),
        "# kiln doctor\n\nThe automatic examination after epoch "
            + epoch
            + " failed: "
            + failure
            + "\n\nExamine the run with `kiln doctor --run "
            + run
            + "`.\n");
  }
}
