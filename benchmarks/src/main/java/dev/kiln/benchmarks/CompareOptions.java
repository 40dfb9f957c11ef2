package dev.kiln.benchmarks;

import dev.kiln.keypoints.model.ModelPresets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Parsed options of {@link Compare}, whose usage text lists them with their defaults. */
final class CompareOptions {
  List<String> models = ModelPresets.names();
  List<Integer> batches = List.of(10, 32);
  List<String> modes = List.of("train", "infer");
  int warmup = 2;
  double warmupSeconds = 5;
  double repeatSeconds = 0.5;
  int repeats = 5;
  int steps = 1;
  int size = 1024;
  final List<String> files = new ArrayList<>();

  static CompareOptions parse(String[] args) {
    CompareOptions options = new CompareOptions();
    Map<String, String> values = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      if (!args[i].startsWith("--")) {
        options.files.add(args[i]);
        continue;
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException("option " + args[i] + " needs a value");
      }
      values.put(args[i], args[++i]);
    }
    for (Map.Entry<String, String> entry : values.entrySet()) {
      String value = entry.getValue();
      switch (entry.getKey()) {
        case "--models" -> options.models = presets(value);
        case "--batches" -> options.batches = batchSizes(value);
        case "--modes" -> options.modes = modes(value);
        case "--warmup" -> options.warmup = count(entry.getKey(), value, 0);
        case "--warmup-seconds" -> options.warmupSeconds = seconds(entry.getKey(), value);
        case "--repeat-seconds" -> options.repeatSeconds = seconds(entry.getKey(), value);
        case "--repeats" -> options.repeats = count(entry.getKey(), value, 1);
        case "--steps" -> options.steps = count(entry.getKey(), value, 1);
        case "--size" -> options.size = count(entry.getKey(), value, 1);
        default -> throw new IllegalArgumentException("unknown option " + entry.getKey());
      }
    }
    return options;
  }

  /**
   * Splits a comma-separated list of preset names. Model files are rejected, because {@code
   * pytorch_bench.py} builds only the presets, so a model file would have no PyTorch side.
   */
  private static List<String> presets(String value) {
    List<String> models = items("--models", value, "preset", "Use one or more of " + presetNames());
    for (String model : models) {
      if (!ModelPresets.names().contains(model)) {
        throw new IllegalArgumentException(
            "unknown model preset '" + model + "' in --models: use one of " + presetNames());
      }
    }
    requireDistinct("--models", value, "preset", models);
    return models;
  }

  private static String presetNames() {
    return String.join(", ", ModelPresets.names());
  }

  private static List<Integer> batchSizes(String value) {
    List<Integer> sizes = new ArrayList<>();
    for (String item : items("--batches", value, "batch size", "Use one or more, such as 10,32")) {
      sizes.add(count("--batches", item, 1));
    }
    requireDistinct("--batches", value, "batch size", sizes);
    return sizes;
  }

  private static List<String> modes(String value) {
    List<String> modes = items("--modes", value, "mode", "Use train, infer or both");
    for (String mode : modes) {
      if (!mode.equals("train") && !mode.equals("infer")) {
        throw new IllegalArgumentException(
            "invalid mode '" + mode + "' in --modes: use train, infer or both");
      }
    }
    requireDistinct("--modes", value, "mode", modes);
    return modes;
  }

  /**
   * Splits a comma-separated list and rejects a blank item. The split keeps trailing empty strings,
   * which {@code String.split} without a limit drops, so {@code default,} is rejected like {@code
   * default,,lenet-20m}.
   *
   * @param noun what one item is, for the error message
   * @param hint the sentence that ends the error for a list without items
   */
  private static List<String> items(String option, String value, String noun, String hint) {
    List<String> items = List.of(value.split(",", -1));
    if (items.stream().allMatch(String::isBlank)) {
      throw new IllegalArgumentException(
          invalid(option, value) + "the list names no " + noun + ". " + hint);
    }
    if (items.stream().anyMatch(String::isBlank)) {
      throw new IllegalArgumentException(
          invalid(option, value)
              + "the list contains an empty "
              + noun
              + ", so remove the extra comma");
    }
    return items;
  }

  /**
   * Rejects a list that names an item more than once. The work of each copy would run again, and
   * the table keeps only the last record of each model, batch and mode.
   */
  private static void requireDistinct(String option, String value, String noun, List<?> items) {
    Set<Object> seen = new HashSet<>();
    for (Object item : items) {
      if (!seen.add(item)) {
        throw new IllegalArgumentException(
            invalid(option, value)
                + "'"
                + item
                + "' is listed more than once, so list each "
                + noun
                + " once");
      }
    }
  }

  /**
   * Parses seconds written as digits with an optional decimal fraction, a form that Python's {@code
   * float} in {@code pytorch_bench.py} also reads. {@code Double.parseDouble} alone would also take
   * {@code 2f} or {@code 0x1p3}, which {@code float} rejects, so the PyTorch side would fail after
   * kiln's side had run.
   */
  private static double seconds(String option, String value) {
    if (!value.matches("[0-9]+([.][0-9]+)?")) {
      throw new IllegalArgumentException(
          invalid(option, value) + "expected seconds, 0 or more, written like 2 or 0.5");
    }
    return Double.parseDouble(value);
  }

  /** Parses a whole number of at least {@code minimum}, ignoring spaces around it. */
  private static int count(String option, String value, int minimum) {
    String digits = value.trim();
    try {
      int number = Integer.parseInt(digits);
      if (number >= minimum) {
        return number;
      }
    } catch (NumberFormatException e) {
      if (digits.matches("[+]?[0-9]+")) {
        throw new IllegalArgumentException(
            invalid(option, value)
                + "expected a whole number from "
                + minimum
                + " to "
                + Integer.MAX_VALUE,
            e);
      }
      // Not a whole number at all: the error below names the accepted range.
    }
    throw new IllegalArgumentException(
        invalid(option, value) + "expected a whole number, " + minimum + " or more");
  }

  /** Returns the {@code invalid value 'VALUE' for OPTION: } prefix of an error message. */
  private static String invalid(String option, String value) {
    return "invalid value '" + value + "' for " + option + ": ";
  }
}
