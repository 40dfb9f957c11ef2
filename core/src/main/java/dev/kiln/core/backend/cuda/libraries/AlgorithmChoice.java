package dev.kiln.core.backend.cuda.libraries;

import java.util.ArrayList;
import java.util.List;

/**
 * Chooses a convolution algorithm from cuDNN's list: the best one that supports the shape, runs in
 * the math type kiln requested and whose workspace fits a limit.
 *
 * <p>The limit exists because the workspace comes from the same device memory as the activations.
 * The fastest algorithm can ask for gigabytes, and taking them would make a batch size that fits
 * with a slower algorithm run out of memory. kiln therefore caps the workspace, by default at
 * {@value #DEFAULT_LIMIT_MIB} MiB, which the system property {@value #LIMIT_PROPERTY} changes. The
 * default is a chosen bound, not a measured optimum.
 *
 * <p>cuDNN lists each algorithm with the math type it would run with, but the convolution call runs
 * with the descriptor's math type. kiln sets {@code CUDNN_FMA_MATH} on every convolution descriptor
 * so that float32 inputs are not rounded to TF32 on tensor cores. Entries listed with any other
 * math type are skipped, because their rank and time describe a run in that math type. PyTorch
 * relies on the same listing: with TF32 off it sets {@code CUDNN_FMA_MATH} and asserts that the
 * entry it chose reports that math type.
 *
 * <p>Two kinds of lists arrive here, and the caller says which one with {@link Ranking}, because
 * the entries alone do not tell them apart. {@code cudnnFindConvolution*AlgorithmEx} runs each
 * algorithm and reports measured times, so the smallest time wins, and ties go to the smaller
 * workspace and then to the lower algorithm number, so that the choice is repeatable. {@code
 * cudnnGetConvolution*Algorithm_v7} runs nothing and returns the algorithms ranked by cuDNN's
 * heuristics, so there the first usable entry wins.
 *
 * <p>NOTE: the choice ignores each entry's {@code determinism} field, so a backward direction may
 * run an algorithm that cuDNN reports as {@code CUDNN_NON_DETERMINISTIC}, and two runs of the same
 * step can then differ in the last bits.
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

  /** The order of a result list, which decides how {@link #choose} ranks it. */
  public enum Ranking {
    /**
     * Times measured by {@code cudnnFindConvolution*AlgorithmEx}, in any order: the fastest usable
     * entry wins.
     */
    MEASURED,

    /**
     * cuDNN's heuristic order from {@code cudnnGetConvolution*Algorithm_v7}: the first usable entry
     * wins, whatever its time field contains.
     */
    HEURISTIC
  }

  /**
   * Chooses an algorithm. An entry is usable when its status is 0, its math type is {@code
   * CUDNN_FMA_MATH} and its workspace fits {@code limitBytes}.
   *
   * @param operation the convolution direction, for the message, such as "convolution forward"
   * @param results cuDNN's list, in the order that cuDNN returned it
   * @param ranking which cuDNN function produced the list
   * @param limitBytes the largest workspace allowed
   * @return the chosen entry
   * @throws IllegalStateException if no entry is usable, naming each entry's reason
   */
  public static AlgorithmPerf choose(
      String operation, List<AlgorithmPerf> results, Ranking ranking, long limitBytes) {
    AlgorithmPerf best = null;
    List<String> rejected = new ArrayList<>();
    for (AlgorithmPerf entry : results) {
      String reason = rejection(entry, limitBytes);
      if (reason != null) {
        rejected.add(reason);
        continue;
      }
      if (ranking == Ranking.HEURISTIC) {
        // A heuristic list is already ranked, so the first usable entry is cuDNN's choice.
        best = entry;
        break;
      }
      if (best == null || faster(entry, best)) {
        best = entry;
      }
    }
    if (best == null) {
      throw new IllegalStateException(
          "no cuDNN algorithm for "
              + operation
              + " supports this shape with CUDNN_FMA_MATH within the workspace limit of "
              + limitBytes
              + " bytes ("
              + (rejected.isEmpty() ? "cuDNN returned no algorithms" : String.join(", ", rejected))
              + "): raise -D"
              + LIMIT_PROPERTY
              + " or run with -Dkiln.cuda.vendor=kiln");
    }
    return best;
  }

  /** Returns why an entry cannot be used, or null where it can. */
  private static String rejection(AlgorithmPerf entry, long limitBytes) {
    if (entry.status() != 0) {
      return "algorithm " + entry.algorithm() + " has status " + entry.status();
    }
    if (entry.mathType() != CudnnDescriptors.FMA_MATH) {
      return "algorithm "
          + entry.algorithm()
          + " is listed with math type "
          + entry.mathType()
          + ", not CUDNN_FMA_MATH ("
          + CudnnDescriptors.FMA_MATH
          + ")";
    }
    if (entry.workspaceBytes() > limitBytes) {
      return "algorithm " + entry.algorithm() + " needs " + entry.workspaceBytes() + " bytes";
    }
    return null;
  }

  private static boolean faster(AlgorithmPerf a, AlgorithmPerf b) {
    if (a.timeMillis() != b.timeMillis()) {
      return a.timeMillis() < b.timeMillis();
    }
    if (a.workspaceBytes() != b.workspaceBytes()) {
      return a.workspaceBytes() < b.workspaceBytes();
    }
    return a.algorithm() < b.algorithm();
  }
}
