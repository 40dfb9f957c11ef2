package dev.kiln.keypoints.doctor;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;

/**
 * Settings of a doctor examination. Start from {@link #defaults()} and change fields with the
 * {@code with} methods.
 *
 * @param checks the checks to run
 * @param batchSize faces per batch in every check
 * @param dataBatches training batches that the data check transforms and measures
 * @param overfitSteps optimizer steps of the one-batch test
 * @param rangeSteps steps of the learning-rate range test
 * @param output folder for the PNG files, or null to write none
 * @param learningRateSource description of the optimizer's learning rate that the report prints
 *     beside the rate, such as the command-line option that set it or the schedule that changed it
 * @param deadline the point at which the examination stops, whatever checks remain, or null for no
 *     limit
 */
public record DoctorOptions(
    Set<Check> checks,
    int batchSize,
    int dataBatches,
    int overfitSteps,
    int rangeSteps,
    Path output,
    String learningRateSource,
    Deadline deadline) {

  /** Source of the learning rate that {@link #defaults()} reports. */
  public static final String CURRENT_RATE = "the optimizer's current rate";

  public DoctorOptions {
    checks = checks.isEmpty() ? EnumSet.noneOf(Check.class) : EnumSet.copyOf(checks);
    requireAtLeast("batchSize", batchSize, 2);
    requireAtLeast("dataBatches", dataBatches, 1);
    requireAtLeast("overfitSteps", overfitSteps, 1);
    requireAtLeast("rangeSteps", rangeSteps, 10);
    Objects.requireNonNull(learningRateSource, "learningRateSource");
  }

  private static void requireAtLeast(String name, int value, int minimum) {
    if (value < minimum) {
      throw new IllegalArgumentException(name + " must be at least " + minimum + ", got " + value);
    }
  }

  /**
   * Returns the defaults: all checks, batches of 16, 4 data batches, 150 one-batch steps, 100
   * range-test steps, no PNG files, the learning rate named as {@link #CURRENT_RATE}, and no
   * deadline.
   */
  public static DoctorOptions defaults() {
    return new DoctorOptions(EnumSet.allOf(Check.class), 16, 4, 150, 100, null, CURRENT_RATE, null);
  }

  /** Returns a copy that runs only {@code value}. */
  public DoctorOptions withChecks(Set<Check> value) {
    return new DoctorOptions(
        value,
        batchSize,
        dataBatches,
        overfitSteps,
        rangeSteps,
        output,
        learningRateSource,
        deadline);
  }

  /** Returns a copy with another batch size. */
  public DoctorOptions withBatchSize(int value) {
    return new DoctorOptions(
        checks, value, dataBatches, overfitSteps, rangeSteps, output, learningRateSource, deadline);
  }

  /** Returns a copy with other step counts for the one-batch test and the range test. */
  public DoctorOptions withSteps(int overfit, int range) {
    return new DoctorOptions(
        checks, batchSize, dataBatches, overfit, range, output, learningRateSource, deadline);
  }

  /** Returns a copy that writes its PNG files to {@code folder}. */
  public DoctorOptions withOutput(Path folder) {
    return new DoctorOptions(
        checks,
        batchSize,
        dataBatches,
        overfitSteps,
        rangeSteps,
        folder,
        learningRateSource,
        deadline);
  }

  /** Returns a copy that names the optimizer's learning rate as {@code value} in the report. */
  public DoctorOptions withLearningRateSource(String value) {
    return new DoctorOptions(
        checks, batchSize, dataBatches, overfitSteps, rangeSteps, output, value, deadline);
  }

  /** Returns a copy that stops the examination at {@code value}, or never for null. */
  public DoctorOptions withDeadline(Deadline value) {
    return new DoctorOptions(
        checks,
        batchSize,
        dataBatches,
        overfitSteps,
        rangeSteps,
        output,
        learningRateSource,
        value);
  }

  /** Returns true once the deadline has passed; never without one. */
  public boolean pastDeadline() {
    return deadline != null && deadline.passed();
  }
}
