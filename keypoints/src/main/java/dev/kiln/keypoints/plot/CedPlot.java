package dev.kiln.keypoints.plot;

import dev.kiln.keypoints.eval.EvaluationResult;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Plots cumulative error distribution (CED) curves: for each evaluation, the share of faces whose
 * NME is at most the threshold on the x axis. The legend gives each curve's AUC and failure rate.
 */
public final class CedPlot {
  private CedPlot() {}

  /**
   * Writes the CED curves of {@code results} from 0 to {@code max} in steps of {@code step} to
   * {@code png}, {@code width × height} pixels, atomically. Each curve is named after its
   * checkpoint.
   */
  public static void write(
      List<EvaluationResult> results, double max, double step, Path png, int width, int height)
      throws IOException {
    if (results.isEmpty()) {
      throw new IllegalArgumentException("a CED plot needs at least one evaluation result");
    }
    LinePlot plot =
        new LinePlot("Cumulative error distribution")
            .xLabel("NME threshold (fraction of inter-ocular distance)")
            .yLabel("share of faces with NME ≤ threshold")
            .xRange(0, max)
            .yRange(0, 1)
            .legendAtBottom(true);
    for (EvaluationResult result : results) {
      EvaluationResult.Ced ced = result.ced(max, step);
      String name =
          String.format(
              Locale.ROOT,
              "%s (AUC %.3f, failures >10%% %.1f%%)",
              result.checkpoint(),
              result.auc(max),
              100 * result.failureRate(0.10));
      plot.add(name, ced.thresholds(), ced.shares());
    }
    plot.writePng(png, width, height);
  }

  /** Writes the CED curve of one result with the default range, 800 × 500 pixels. */
  public static void write(EvaluationResult result, Path png) throws IOException {
    write(
        List.of(result),
        EvaluationResult.DEFAULT_CED_MAX,
        EvaluationResult.DEFAULT_CED_STEP,
        png,
        800,
        500);
  }
}
