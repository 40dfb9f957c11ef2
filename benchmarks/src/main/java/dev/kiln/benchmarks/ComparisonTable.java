package dev.kiln.benchmarks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Joins the records that {@link Compare} and {@code pytorch_bench.py} print into the comparison
 * table: images/s of both sides with the ratio of the medians, the GEMM rates, peak RSS and a check
 * that both sides built the same models.
 */
final class ComparisonTable {
  /** Record kinds that the table reads; see {@link Compare} for their fields. */
  static final Set<String> KINDS = Set.of("info", "describe", "throughput", "gemm", "rss");

  /** Minimum kiln/PyTorch ratio of median images/s for training and inference. */
  static final double MODEL_TARGET = 1.0;

  /** Minimum kiln/OpenBLAS ratio of median GFLOP/s for the matrix product. */
  static final double GEMM_TARGET = 0.9;

  private ComparisonTable() {}

  static String render(List<String[]> records) {
    StringBuilder text = new StringBuilder();
    appendInfo(text, records);
    appendShapeCheck(text, records);
    appendThroughput(text, records);
    appendGemm(text, records);
    appendRss(text, records);
    return text.toString();
  }

  private static void appendInfo(StringBuilder text, List<String[]> records) {
    for (String[] record : records) {
      if (record[0].equals("info")) {
        text.append(record[1]).append(' ').append(record[2]).append(": ");
        text.append(record[3]).append('\n');
      }
    }
    text.append('\n');
  }

  private static void appendShapeCheck(StringBuilder text, List<String[]> records) {
    Map<String, String> kiln = new LinkedHashMap<>();
    Map<String, String> other = new LinkedHashMap<>();
    for (String[] record : records) {
      if (record[0].equals("describe") && record.length >= 5) {
        (record[1].equals("kiln") ? kiln : other).put(record[2], record[3] + " " + record[4]);
      }
    }
    if (kiln.isEmpty() || other.isEmpty()) {
      return;
    }
    for (Map.Entry<String, String> entry : kiln.entrySet()) {
      String model = entry.getKey();
      boolean same = entry.getValue().equals(other.get(model));
      text.append(
          String.format(
              Locale.ROOT,
              "model %s: %s parameters in kiln, %s in PyTorch, layer output shapes %s%n",
              model,
              entry.getValue().split(" ")[0],
              other.containsKey(model) ? other.get(model).split(" ")[0] : "missing",
              same ? "identical" : "DIFFERENT: the two sides do not run the same model"));
    }
    text.append('\n');
  }

  private static void appendThroughput(StringBuilder text, List<String[]> records) {
    Map<String, double[]> kiln = new LinkedHashMap<>();
    Map<String, double[]> pytorch = new LinkedHashMap<>();
    for (String[] record : records) {
      if (record[0].equals("throughput") && record.length >= 6) {
        String key = record[4] + "\t" + record[2] + "\t" + record[3];
        (record[1].equals("kiln") ? kiln : pytorch).put(key, rates(record[5]));
      }
    }
    if (kiln.isEmpty() && pytorch.isEmpty()) {
      return;
    }
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
          "target " + format(MODEL_TARGET) + "x"
        });
    List<String> keys = new ArrayList<>(kiln.keySet());
    pytorch.keySet().stream().filter(key -> !kiln.containsKey(key)).forEach(keys::add);
    for (String key : keys) {
      String[] parts = key.split("\t");
      double[] ours = kiln.get(key);
      double[] theirs = pytorch.get(key);
      double ratio = ours != null && theirs != null ? median(ours) / median(theirs) : Double.NaN;
      int batch = Integer.parseInt(parts[2]);
      rows.add(
          new String[] {
            parts[0],
            parts[1],
            parts[2],
            spread(ours),
            spread(theirs),
            Double.isNaN(ratio) ? "-" : format(ratio),
            ours == null ? "-" : format(1000.0 * batch / median(ours)),
            verdict(ratio, MODEL_TARGET)
          });
    }
    text.append("Training step and inference batch, images/s over the timed repeats\n");
    text.append(Tables.format(rows, 3)).append('\n');
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
          verdict(ratio, GEMM_TARGET)
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

  /** Returns "met" or how far below the target the ratio is, in percent of the target. */
  static String verdict(double ratio, double target) {
    if (Double.isNaN(ratio)) {
      return "-";
    }
    if (ratio >= target) {
      return "met";
    }
    return String.format(Locale.ROOT, "missed by %.0f%%", 100 * (1 - ratio / target));
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
