package dev.kiln.benchmarks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks from the {@code describe} records that kiln and PyTorch ran the same model: the same
 * parameter count, and the same layers in the same order with the same kind, settings ({@link
 * LayerText}) and output shape. The comparison table gives a model that fails the check no ratio
 * and no verdict.
 */
final class ModelCheck {
  /** The outcome for one model: whether both sides match, and the table's line about it. */
  record Result(String model, boolean identical, String line) {}

  /** The fields of one describe record, with null {@code layers} where the record lacks them. */
  private record Description(String parameters, List<String> shapes, List<String> layers) {}

  private ModelCheck() {}

  /**
   * Checks every model that a describe record names, and every model that both sides timed. Returns
   * nothing when no record comes from a side other than kiln, because then there is nothing to
   * compare with.
   */
  static List<Result> check(List<String[]> records) {
    Map<String, Description> kiln = new LinkedHashMap<>();
    Map<String, Description> other = new LinkedHashMap<>();
    Set<String> models = new LinkedHashSet<>();
    Set<String> timedByKiln = new LinkedHashSet<>();
    Set<String> timedByOther = new LinkedHashSet<>();
    boolean otherSide = false;
    for (String[] record : records) {
      boolean fromKiln = record[1].equals("kiln");
      if (record[0].equals("describe") && record.length >= 5) {
        (fromKiln ? kiln : other).put(record[2], description(record));
        models.add(record[2]);
        otherSide |= !fromKiln;
      } else if (record[0].equals("throughput") && record.length >= 6) {
        (fromKiln ? timedByKiln : timedByOther).add(record[2]);
        otherSide |= !fromKiln;
      }
    }
    if (!otherSide) {
      return List.of();
    }
    timedByKiln.retainAll(timedByOther);
    models.addAll(timedByKiln);
    List<Result> results = new ArrayList<>();
    for (String model : models) {
      results.add(compare(model, kiln.get(model), other.get(model)));
    }
    return results;
  }

  private static Description description(String[] record) {
    List<String> layers = record.length >= 6 ? List.of(record[5].split(LayerText.SEPARATOR)) : null;
    return new Description(record[3], List.of(record[4].split(" ")), layers);
  }

  private static Result compare(String model, Description kiln, Description pytorch) {
    List<String> differences = new ArrayList<>();
    if (kiln == null || pytorch == null) {
      differences.add((kiln == null ? "kiln" : "PyTorch") + " printed no describe record for it");
    } else {
      differences = differences(kiln, pytorch);
    }
    if (differences.isEmpty()) {
      String line =
          "model %s: identical in kiln and PyTorch: %s parameters, %d layers with the same"
              + " settings and output shapes";
      return new Result(
          model, true, line.formatted(model, kiln.parameters(), kiln.layers().size()));
    }
    String line =
        "model %s: DIFFERENT in kiln and PyTorch, so its rows show no ratio and no verdict: %s"
            .formatted(model, String.join("; ", differences));
    return new Result(model, false, line);
  }

  private static List<String> differences(Description kiln, Description pytorch) {
    List<String> differences = new ArrayList<>();
    if (!kiln.parameters().equals(pytorch.parameters())) {
      differences.add(
          kiln.parameters() + " parameters in kiln, " + pytorch.parameters() + " in PyTorch");
    }
    if (kiln.layers() == null || pytorch.layers() == null) {
      String side = kiln.layers() == null ? "kiln's" : "PyTorch's";
      differences.add(
          side
              + " describe record lists no layer settings, so rerun that side's describe with"
              + " the current Compare and pytorch_bench.py");
      return differences;
    }
    int kilnCount = kiln.layers().size();
    int pytorchCount = pytorch.layers().size();
    if (kilnCount != pytorchCount) {
      differences.add(kilnCount + " layers in kiln, " + pytorchCount + " in PyTorch");
    }
    for (int i = 0; i < Math.min(kilnCount, pytorchCount); i++) {
      if (!kiln.layers().get(i).equals(pytorch.layers().get(i))) {
        differences.add(
            "the first differing layer is layer %d: '%s' in kiln, '%s' in PyTorch"
                .formatted(i + 1, kiln.layers().get(i), pytorch.layers().get(i)));
        return differences;
      }
    }
    for (int i = 0; i < Math.min(kiln.shapes().size(), pytorch.shapes().size()); i++) {
      if (!kiln.shapes().get(i).equals(pytorch.shapes().get(i))) {
        differences.add(
            "the first differing output shape is after layer %d: %s in kiln, %s in PyTorch"
                .formatted(i + 1, kiln.shapes().get(i), pytorch.shapes().get(i)));
        return differences;
      }
    }
    if (differences.isEmpty() && kiln.shapes().size() != pytorch.shapes().size()) {
      differences.add(
          kiln.shapes().size()
              + " output shapes in kiln, "
              + pytorch.shapes().size()
              + " in PyTorch");
    }
    return differences;
  }
}
