package dev.kiln.keypoints.doctor;

import java.nio.file.Path;
import java.util.Comparator;
import java.util.Objects;

/**
 * One result of a doctor check.
 *
 * @param severity how urgent the finding is
 * @param code a stable identifier such as {@code output-activation}, for tests and scripts
 * @param specificity how directly the finding names a cause: {@link #CAUSE} for a setting or a
 *     value that is wrong by itself, {@link #MEASURED} for a measurement that points at a cause,
 *     {@link #SYMPTOM} for an effect that many causes share. Findings of equal severity are ranked
 *     by it, so that the cause comes before its symptoms
 * @param title one sentence that states the problem
 * @param evidence the numbers behind the finding
 * @param fix what to change, or an empty string for an {@link Severity#INFO} finding
 * @param image a PNG that shows the problem, or null
 */
public record Finding(
    Severity severity,
    String code,
    int specificity,
    String title,
    String evidence,
    String fix,
    Path image) {

  /** Specificity of a finding that names a wrong setting or value directly. */
  public static final int CAUSE = 3;

  /** Specificity of a measurement that points at a cause. */
  public static final int MEASURED = 2;

  /** Specificity of an effect that many causes share. */
  public static final int SYMPTOM = 1;

  /** Ranking order: severity first, then specificity, highest first. */
  public static final Comparator<Finding> RANKING =
      Comparator.comparing(Finding::severity)
          .thenComparing(Comparator.comparingInt(Finding::specificity).reversed());

  public Finding {
    Objects.requireNonNull(severity, "severity");
    Objects.requireNonNull(code, "code");
    Objects.requireNonNull(title, "title");
    Objects.requireNonNull(evidence, "evidence");
    fix = fix == null ? "" : fix;
  }

  /** Returns an {@link Severity#INFO} finding with no fix and no image. */
  public static Finding info(String code, String title, String evidence) {
    return new Finding(Severity.INFO, code, MEASURED, title, evidence, "", null);
  }

  /** Returns a copy that points at {@code png}. */
  public Finding withImage(Path png) {
    return new Finding(severity, code, specificity, title, evidence, fix, png);
  }

  /** Returns true for a {@link Severity#CRITICAL} or {@link Severity#WARNING} finding. */
  public boolean isProblem() {
    return severity != Severity.INFO;
  }
}
