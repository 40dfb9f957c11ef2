package dev.kiln.benchmarks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Joins the records that {@link Compare} and {@code pytorch_bench.py} print into the comparison
 * table: images/s of both sides with the ratio of the medians, the GEMM rates, peak RSS and a check
 * that both sides built the same models ({@link ModelCheck}).
 *
 * <p>A verdict compares the ratio of the medians with the target only where the min-max ranges of
 * the repeats leave no doubt. Where kiln's range overlaps the other side's range scaled by the
 * target, a different draw of repeats could put the medians either way, so the verdict is {@value
 * #TIE}. A model that fails the model check gets neither a ratio nor a verdict.
 */
final class ComparisonTable {
  /**
   * Mean runnable threads of other processes from which a row is marked: other work then took half
   * a core or more while a side was about to run. A chosen bound, not a measured one.
   */
  static final double BUSY_LIMIT = 0.5;

  /** Record kinds that the table reads; see {@link Compare} for their fields. */
  static final Set<String> KINDS = Set.of("info", "describe", "throughput", "gemm", "rss", "load");

  /** The verdict where the two sides' min-max ranges overlap. */
  static final String TIE = "tie (ranges overlap)";

  /** The verdict cell of a model that the two sides do not run the same way. */
  static final String NOT_COMPARABLE = "not comparable";

  /** Minimum kiln/PyTorch ratio of median images/s for training and inference. */
  static final double MODEL_TARGET = 1.0;

  /** Minimum kiln/OpenBLAS ratio of median GFLOP/s for the matrix product. */
  static final double GEMM_TARGET = 0.9;

  private ComparisonTable() {}

  /** The table's text, and the models that failed the model check. */
  record Rendered(String text, List<String> differentModels) {}

  static Rendered render(List<String[]> records) {
    StringBuilder text = new StringBuilder();
    appendInfo(text, records);
    List<ModelCheck.Result> checks = ModelCheck.check(records);
    Set<String> different = new LinkedHashSet<>();
    for (ModelCheck.Result check : checks) {
      text.append(check.line()).append('\n');
      if (!check.identical()) {
        different.add(check.model());
      }
    }
    if (!checks.isEmpty()) {
      text.append('\n');
    }
    appendThroughput(text, records, different);
    appendGemm(text, records);
    appendRss(text, records);
    return new Rendered(text.toString(), List.copyOf(different));
  }

  /**
   * Appends each distinct info record once, in the order of first appearance, because compare.sh
   * starts each side once per model, batch and mode, and each start prints its info records.
   */
  private static void appendInfo(StringBuilder text, List<String[]> records) {
    Set<String> lines = new LinkedHashSet<>();
    for (String[] record : records) {
      if (record[0].equals("info")) {
        lines.add(record[1] + " " + record[2] + ": " + record[3]);
      }
    }
    for (String line : lines) {
      text.append(line).append('\n');
    }
    text.append('\n');
  }

  private static void appendThroughput(
      StringBuilder text, List<String[]> records, Set<String> differentModels) {
    Map<String, double[]> kiln = new LinkedHashMap<>();
    Map<String, double[]> pytorch = new LinkedHashMap<>();
    Map<String, String> kilnLoad = new LinkedHashMap<>();
    Map<String, String> pytorchLoad = new LinkedHashMap<>();
    for (String[] record : records) {
      if ((record[0].equals("throughput") || record[0].equals("load")) && record.length >= 6) {
        String key = record[4] + "\t" + record[2] + "\t" + record[3];
        boolean fromKiln = record[1].equals("kiln");
        if (record[0].equals("throughput")) {
          (fromKiln ? kiln : pytorch).put(key, rates(record[5]));
        } else {
          (fromKiln ? kilnLoad : pytorchLoad).put(key, record[5]);
        }
      }
    }
    if (kiln.isEmpty() && pytorch.isEmpty()) {
      return;
    }
    List<String> busyRows = new ArrayList<>();
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {
          "mode",
          "model",
          "batch",
          "kiln images/s min/med/max",
          "PyTorch images/s min/med/max",
          "kiln/PyTorch",
          "kiln ms/batch",
          "busy kiln/PyTorch",
          "target " + format(MODEL_TARGET) + "x"
        });
    List<String> keys = new ArrayList<>(kiln.keySet());
    pytorch.keySet().stream().filter(key -> !kiln.containsKey(key)).forEach(keys::add);
    for (String key : keys) {
      String[] parts = key.split("\t");
      double[] ours = kiln.get(key);
      double[] theirs = pytorch.get(key);
      boolean comparable = !differentModels.contains(parts[1]);
      double ratio =
          ours != null && theirs != null && comparable ? median(ours) / median(theirs) : Double.NaN;
      int batch = Integer.parseInt(parts[2]);
      String load = busy(kilnLoad.get(key)) + " / " + busy(pytorchLoad.get(key));
      if (load.contains("*")) {
        busyRows.add(parts[0] + " " + parts[1] + " " + parts[2]);
      }
      rows.add(
          new String[] {
            parts[0],
            parts[1],
            parts[2],
            spread(ours),
            spread(theirs),
            Double.isNaN(ratio) ? "-" : format(ratio),
            ours == null ? "-" : format(1000.0 * batch / median(ours)),
            load,
            comparable ? verdict(ours, theirs, MODEL_TARGET) : NOT_COMPARABLE
          });
    }
    text.append("Training step and inference batch, images/s over the timed repeats\n");
    text.append(Tables.format(rows, 3));
    if (!kilnLoad.isEmpty() || !pytorchLoad.isEmpty()) {
      text.append(
          "busy: mean runnable threads of other processes in the second before each side's run"
              + " of the row\n");
    }
    if (!busyRows.isEmpty()) {
      text.append(
          String.format(
              Locale.ROOT,
              "warning: values marked * are at least %.1f, so other work may have slowed these"
                  + " rows: %s%n",
              BUSY_LIMIT,
              String.join(", ", busyRows)));
    }
    text.append('\n');
  }

  /**
   * Returns a {@code load} record's value, the mean runnable threads of other processes, marked
   * with * from {@link #BUSY_LIMIT} on, or "-" if missing.
   */
  private static String busy(String value) {
    if (value == null) {
      return "-";
    }
    return Double.parseDouble(value) >= BUSY_LIMIT ? value + "*" : value;
  }

  private static void appendGemm(StringBuilder text, List<String[]> records) {
    double[] kiln = null;
    double[] blas = null;
    String size = "";
    for (String[] record : records) {
      if (record[0].equals("gemm")) {
        size = record[2];
        if (record[1].equals("kiln")) {
          kiln = rates(record[3]);
        } else {
          blas = rates(record[3]);
        }
      }
    }
    if (kiln == null && blas == null) {
      return;
    }
    double ratio = kiln != null && blas != null ? median(kiln) / median(blas) : Double.NaN;
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {
          "product",
          "kiln GFLOP/s min/med/max",
          "OpenBLAS GFLOP/s min/med/max",
          "kiln/OpenBLAS",
          "target " + format(GEMM_TARGET) + "x"
        });
    rows.add(
        new String[] {
          size + "^3 float32",
          spread(kiln),
          spread(blas),
          Double.isNaN(ratio) ? "-" : format(ratio),
          verdict(kiln, blas, GEMM_TARGET)
        });
    text.append("Matrix product\n").append(Tables.format(rows, 1)).append('\n');
  }

  private static void appendRss(StringBuilder text, List<String[]> records) {
    for (String[] record : records) {
      if (record[0].equals("rss") && record.length >= 6) {
        text.append(
            String.format(
                Locale.ROOT,
                "peak RSS (VmHWM), %s %s at batch %s: %s %.0f MiB%n",
                record[2],
                record[4].equals("train") ? "training" : "inference",
                record[3],
                record[1],
                Long.parseLong(record[5]) / 1024.0));
      }
    }
  }

  private static double[] rates(String field) {
    return Arrays.stream(field.split(",")).mapToDouble(Double::parseDouble).toArray();
  }

  /** Returns the median of {@code values}, the mean of the two middle ones for an even count. */
  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int middle = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  private static String spread(double[] values) {
    if (values == null) {
      return "-";
    }
    double min = Arrays.stream(values).min().orElseThrow();
    double max = Arrays.stream(values).max().orElseThrow();
    return format(min) + " / " + format(median(values)) + " / " + format(max);
  }

  /**
   * Returns the verdict on kiln's rates {@code ours} against the other side's {@code theirs}, as
   * {@link #outcome} decides it for rates: {@value #TIE}, "met", or how far below the target the
   * ratio of the medians is, in percent of the target. Returns "-" where a side has no rates.
   */
  static String verdict(double[] ours, double[] theirs, double target) {
    if (ours == null || theirs == null) {
      return "-";
    }
    return switch (outcome(ours, theirs, target, Better.HIGHER)) {
      case TIE -> TIE;
      case MET -> "met";
      case MISSED ->
          String.format(
              Locale.ROOT, "missed by %.0f%%", 100 * (1 - median(ours) / median(theirs) / target));
    };
  }

  /** The better direction of the compared values: higher for rates, lower for times. */
  enum Better {
    HIGHER,
    LOWER
  }

  /** The outcome of a comparison of kiln's repeats with the other side's against a target. */
  enum Outcome {
    MET,
    MISSED,
    TIE
  }

  /**
   * Compares kiln's repeats {@code ours} with the other side's {@code theirs} against {@code
   * target}, a bound on the ratio of kiln's median to the other side's. The outcome is {@code TIE}
   * where kiln's min-max range overlaps the other side's range times {@code target}, because
   * another draw of repeats could then put the medians either way. Otherwise it is {@code MET}
   * where the unrounded ratio of the medians is at least {@code target} for {@link Better#HIGHER}
   * values, or at most {@code target} for {@link Better#LOWER} values, and {@code MISSED} where it
   * is not. Both sides need at least one value.
   */
  static Outcome outcome(double[] ours, double[] theirs, double target, Better better) {
    double oursMin = Arrays.stream(ours).min().orElseThrow();
    double oursMax = Arrays.stream(ours).max().orElseThrow();
    double theirsMin = target * Arrays.stream(theirs).min().orElseThrow();
    double theirsMax = target * Arrays.stream(theirs).max().orElseThrow();
    if (oursMin <= theirsMax && theirsMin <= oursMax) {
      return Outcome.TIE;
    }
    double ratio = median(ours) / median(theirs);
    boolean met = better == Better.HIGHER ? ratio >= target : ratio <= target;
    return met ? Outcome.MET : Outcome.MISSED;
  }

  static String format(double value) {
    if (!Double.isFinite(value)) {
      return "-";
    }
    if (value >= 100) {
      return String.format(Locale.ROOT, "%.0f", value);
    }
    if (value >= 10) {
      return String.format(Locale.ROOT, "%.1f", value);
    }
    return String.format(Locale.ROOT, "%.2f", value);
  }
}
