package dev.kiln.core.backend.cuda.libraries;

import java.util.ArrayList;
import java.util.List;

/**
 * Chooses a convolution algorithm from cuDNN's list: the fastest one that supports the shape and
 * whose workspace fits a limit.
 *
 * <p>The limit exists because the workspace comes from the same device memory as the activations.
 * The fastest algorithm can ask for gigabytes, and taking them would make a batch size that fits
 * with a slower algorithm run out of memory. kiln therefore caps the workspace, by default at
 * {@value #DEFAULT_LIMIT_MIB} MiB, which the system property {@value #LIMIT_PROPERTY} changes. The
 * default is a chosen bound, not a measured optimum.
 *
 * <p>Two kinds of lists arrive here. {@code cudnnFindConvolution*AlgorithmEx} runs each algorithm
 * and reports measured times, so the smallest time wins, and ties go to the smaller workspace and
 * then to the lower algorithm number, so that the choice is repeatable. {@code
 * cudnnGetConvolution*Algorithm_v7} runs nothing and returns the algorithms ranked by cuDNN's
 * heuristics with negative times, so there the first entry that fits wins.
 */
public final class AlgorithmChoice {

  /** System property that sets the workspace limit, in MiB. */
  public static final String LIMIT_PROPERTY = "kiln.cudnn.workspaceLimitMiB";

  /** Default workspace limit in MiB. */
  public static final long DEFAULT_LIMIT_MIB = 1024;

  private AlgorithmChoice() {}

  /**
   * Returns the workspace limit in bytes from {@value #LIMIT_PROPERTY}, or the default.
   *
   * @throws IllegalArgumentException if the property is not a non-negative whole number
   */
  public static long workspaceLimitBytes() {
    String value = System.getProperty(LIMIT_PROPERTY);
    if (value == null || value.isBlank()) {
      return DEFAULT_LIMIT_MIB << 20;
    }
    try {
      long mib = Long.parseLong(value.strip());
      if (mib < 0) {
        throw new NumberFormatException("negative");
      }
      return mib << 20;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "system property "
              + LIMIT_PROPERTY
              + "="
              + value
              + " is invalid: give the cuDNN workspace limit in MiB as a whole number, such as"
              + " 512");
    }
  }

  /**
   * Chooses an algorithm.
   *
   * @param operation the convolution direction, for the message, such as "convolution forward"
   * @param results cuDNN's list, in the order that cuDNN returned it
   * @param limitBytes the largest workspace allowed
   * @return the chosen entry
   * @throws IllegalStateException if no entry succeeded within the limit, naming each entry's
   *     reason
   */
  public static AlgorithmPerf choose(
      String operation, List<AlgorithmPerf> results, long limitBytes) {
    AlgorithmPerf best = null;
    List<String> rejected = new ArrayList<>();
    for (AlgorithmPerf entry : results) {
      if (entry.status() != 0) {
        rejected.add("algorithm " + entry.algorithm() + " has status " + entry.status());
        continue;
      }
      if (entry.workspaceBytes() > limitBytes) {
        rejected.add(
            "algorithm " + entry.algorithm() + " needs " + entry.workspaceBytes() + " bytes");
        continue;
      }
      if (!entry.measured()) {
        // A heuristic list is already ranked, so the first fitting entry is cuDNN's choice.
        if (best == null) {
          best = entry;
        }
        continue;
      }
      if (best == null || faster(entry, best)) {
        best = entry;
      }
    }
    if (best == null) {
      throw new IllegalStateException(
          "no cuDNN algorithm for "
              + operation
              + " fits the workspace limit of "
              + limitBytes
              + " bytes ("
              + (rejected.isEmpty() ? "cuDNN returned no algorithms" : String.join(", ", rejected))
              + "): raise -D"
              + LIMIT_PROPERTY
              + " or run with -Dkiln.cuda.vendor=kiln");
    }
    return best;
  }

  private static boolean faster(AlgorithmPerf a, AlgorithmPerf b) {
    if (!b.measured()) {
      return true;
    }
    if (a.timeMillis() != b.timeMillis()) {
      return a.timeMillis() < b.timeMillis();
    }
    if (a.workspaceBytes() != b.workspaceBytes()) {
      return a.workspaceBytes() < b.workspaceBytes();
    }
    return a.algorithm() < b.algorithm();
  }
}
