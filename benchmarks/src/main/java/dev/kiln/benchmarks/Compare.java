package dev.kiln.benchmarks;

import dev.kiln.core.backend.cpu.CpuParallel;
import dev.kiln.core.backend.cpu.Gemm;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Storage;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * kiln's side of {@code compare.sh}: the same work as {@code pytorch_bench.py}, printed as the same
 * tab-separated records, and the table that joins the two sides.
 *
 * <p>Records, one a line, fields separated by tabs:
 *
 * <pre>
 * info        SIDE  KEY  VALUE
 * describe    SIDE  MODEL  PARAMETERS  SHAPES  LAYERS
 * throughput  SIDE  MODEL  BATCH  MODE  V1,V2,...    (images/s of each timed repeat)
 * gemm        SIDE  SIZE  G1,G2,...                  (GFLOP/s of each timed repeat)
 * rss         SIDE  MODEL  BATCH  MODE  KIB          (peak resident set, VmHWM)
 * load        SIDE  MODEL  BATCH  MODE  BUSY         (runnable threads of other processes)
 * </pre>
 *
 * <p>SHAPES is the output shape after each layer, separated by spaces, and LAYERS the text of each
 * layer's kind and settings from {@link LayerText}, separated by {@code "; "}. compare.sh writes
 * the load records, because it starts each side once per model, batch and mode.
 *
 * <p>MODE is {@code train} or {@code infer}. A timed repeat of a model runs at least {@code
 * --steps} units of work, and more until it has lasted {@code --repeat-seconds}, so that one
 * garbage collection or scheduler hiccup does not decide the figure of a fast model. Before the
 * repeats, at least {@code --warmup} untimed units run, and more until {@code --warmup-seconds}
 * have passed, once per model, batch and mode. The time bound lets the JIT compile the hot loops
 * before timing starts, whatever a unit costs; the Python side applies the same rule.
 */
public final class Compare {
  private static final String SIDE = "kiln";

  private Compare() {}

  public static void main(String[] args) throws IOException {
    if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
      System.out.print(usage());
      return;
    }
    String command = args[0];
    try {
      CompareOptions options = CompareOptions.parse(Arrays.copyOfRange(args, 1, args.length));
      switch (command) {
        case "check" -> {
          // Parsing the options was the whole check.
        }
        case "describe" -> describe(options);
        case "run" -> run(options);
        case "gemm" -> gemm(options);
        case "rss" -> rss(options);
        case "cells" -> cells(options);
        case "table" -> table(options);
        default -> throw new IllegalArgumentException("unknown command '" + command + "'");
      }
    } catch (IllegalArgumentException e) {
      if (command.equals("check")) {
        // compare.sh prints this reason under its own name and follows it with its own usage,
        // because Compare's commands and options are not the ones that its user typed.
        System.out.println(e.getMessage());
      } else {
        System.err.println("Compare: " + e.getMessage());
        System.err.print(usage());
      }
      System.exit(2);
    }
  }

  private static String usage() {
    return """
        Usage: Compare COMMAND [OPTIONS]
          check      print nothing if the options are valid, or else print the reason alone on
                     standard output and exit with status 2
          describe   print each model's parameter count, output shapes and layer settings
          cells      print each model, batch and mode of the options, one tab-separated line
                     each, in the order that run times them
          run        time training steps and inference batches (images/s)
          gemm       time the float32 matrix product at --size (GFLOP/s)
          rss        run --repeats training steps of one model and batch, then print the peak RSS
          table FILE...  join the records of both sides into the comparison table; exit with
                     status 1 after printing it if the two sides ran different models
        Options:
          The lists are comma-separated and name each item once, with no empty items.
          --models a,b      preset names, not model files
                            (default: default,naimishnet,lenet-20m,lenet-48m)
          --batches 10,32   batch sizes (default: 10,32)
          --modes train,infer  (default: both)
          --warmup N        untimed units of work before timing, at least (default: 2)
          --warmup-seconds S  keep warming up until S seconds have passed (default: 5)
          --repeat-seconds S  for the models, extend each timed repeat by whole units until it
                              has lasted S seconds (default: 0.5)
          --repeats N       timed repeats (default: 5)
          --steps N         units of work per timed repeat (default: 1)
          --size N          GEMM size N x N x N (default: 1024)
        The thread count is the system property kiln.threads (default: all cores).
        """;
  }

  private static void printInfo() {
    info("java", System.getProperty("java.vm.name") + " " + Runtime.version());
    info("threads", Integer.toString(CpuParallel.threads()));
    // The CPUs that this process may run on, which compare.sh limits to the thread count.
    info("cpus", Integer.toString(Runtime.getRuntime().availableProcessors()));
    info("max_heap_mib", Long.toString(Runtime.getRuntime().maxMemory() >> 20));
    // The garbage collector and heap options change the peak RSS, so the records name them.
    info("jvm_options", String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments()));
  }

  private static void info(String key, String value) {
    System.out.println(String.join("\t", "info", SIDE, key, value));
  }

  private static void describe(CompareOptions options) {
    for (String model : options.models) {
      System.out.println(describeRecord(SIDE, model));
    }
  }

  /** Returns the describe record of preset {@code model}, with {@code side} as its SIDE field. */
  static String describeRecord(String side, String model) {
    ModelSpec spec = ModelPresets.byName(model);
    return String.join(
        "\t",
        "describe",
        side,
        model,
        Long.toString(spec.parameterCount()),
        shapes(spec),
        String.join(LayerText.SEPARATOR, LayerText.of(spec)));
  }

  private static void cells(CompareOptions options) {
    for (String model : options.models) {
      for (int batch : options.batches) {
        for (String mode : options.modes) {
          System.out.println(String.join("\t", model, Integer.toString(batch), mode));
        }
      }
    }
  }

  /**
   * Prints the comparison table, and then exits with status 1 if a model failed the model check, so
   * that compare.sh and its caller see that some rows have no verdict.
   */
  private static void table(CompareOptions options) throws IOException {
    ComparisonTable.Rendered table = ComparisonTable.render(readRecords(options.files));
    System.out.print(table.text());
    if (!table.differentModels().isEmpty()) {
      System.out.flush();
      System.err.println(
          "Compare: kiln and PyTorch ran different models ("
              + String.join(", ", table.differentModels())
              + "), so their rows have no ratio and no verdict. The model lines above the table"
              + " name the first difference.");
      System.exit(1);
    }
  }

  /** Returns the output shape after each layer as {@code 16x96x96 16x96x96 ... 136}. */
  static String shapes(ModelSpec spec) {
    List<String> shapes = new ArrayList<>();
    for (int i = 1; i < spec.layers().size(); i++) {
      shapes.add(formatShape(spec.inputShapeOf(i)));
    }
    shapes.add(formatShape(spec.outputShape()));
    return String.join(" ", shapes);
  }

  private static String formatShape(int[] shape) {
    List<String> sizes = new ArrayList<>();
    for (int size : shape) {
      sizes.add(Integer.toString(size));
    }
    return String.join("x", sizes);
  }

  private static void run(CompareOptions options) {
    printInfo();
    for (String model : options.models) {
      for (int batch : options.batches) {
        KeypointWorkload workload = new KeypointWorkload(model, batch, "cpu", 42);
        for (String mode : options.modes) {
          List<Double> rates = time(workload, mode, options);
          System.out.println(
              String.join(
                  "\t",
                  "throughput",
                  SIDE,
                  model,
                  Integer.toString(batch),
                  mode,
                  joinRates(rates)));
          System.out.flush();
        }
      }
    }
  }

  /** Runs {@code --warmup} units, then more until {@code --warmup-seconds} have passed. */
  private static void warmUp(Runnable unit, CompareOptions options) {
    runAtLeast(unit, options.warmup, options.warmupSeconds);
  }

  /**
   * Runs {@code unit} at least {@code count} times, and more until {@code seconds} have passed.
   *
   * @return how many times it ran
   */
  static int runAtLeast(Runnable unit, int count, double seconds) {
    long start = System.nanoTime();
    long minimumNanos = (long) (seconds * 1e9);
    int done = 0;
    while (done < count || System.nanoTime() - start < minimumNanos) {
      unit.run();
      done++;
    }
    return done;
  }

  /** Runs the warm-up, then returns the images/s of each timed repeat. */
  private static List<Double> time(KeypointWorkload workload, String mode, CompareOptions options) {
    Runnable unit = mode.equals("train") ? () -> workload.trainStep() : () -> workload.inferBatch();
    warmUp(unit, options);
    List<Double> rates = new ArrayList<>();
    for (int r = 0; r < options.repeats; r++) {
      long start = System.nanoTime();
      int units = runAtLeast(unit, options.steps, options.repeatSeconds);
      double seconds = (System.nanoTime() - start) / 1e9;
      rates.add((double) workload.batch() * units / seconds);
    }
    return rates;
  }

  private static void rss(CompareOptions options) throws IOException {
    printInfo();
    String model = options.models.get(0);
    int batch = options.batches.get(0);
    KeypointWorkload workload = new KeypointWorkload(model, batch, "cpu", 42);
    List<Double> rates = time(workload, "train", options);
    System.out.println(
        String.join(
            "\t", "throughput", SIDE, model, Integer.toString(batch), "train", joinRates(rates)));
    System.out.println(
        String.join(
            "\t",
            "rss",
            SIDE,
            model,
            Integer.toString(batch),
            "train",
            Long.toString(peakResidentKib())));
  }

  /** Reads VmHWM, the peak resident set size of this process, from /proc/self/status. */
  static long peakResidentKib() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmHWM:")) {
        return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
      }
    }
    throw new IOException("/proc/self/status has no VmHWM line");
  }

  private static void gemm(CompareOptions options) {
    printInfo();
    int n = options.size;
    Generator generator = new Generator(42);
    Storage a = KeypointWorkload.gaussian(generator, n * n).storage();
    Storage b = KeypointWorkload.gaussian(generator, n * n).storage();
    Storage c = KeypointWorkload.gaussian(generator, n * n).storage();
    Runnable product = () -> Gemm.gemm(false, false, n, n, n, a, 0, b, 0, c, 0, false);
    warmUp(product, options);
    List<Double> rates = new ArrayList<>();
    for (int r = 0; r < options.repeats; r++) {
      long start = System.nanoTime();
      for (int s = 0; s < options.steps; s++) {
        product.run();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      rates.add(2.0 * n * n * n * options.steps / seconds / 1e9);
    }
    System.out.println(String.join("\t", "gemm", SIDE, Integer.toString(n), joinRates(rates)));
  }

  private static String joinRates(List<Double> rates) {
    List<String> text = new ArrayList<>();
    for (double rate : rates) {
      text.add(String.format(Locale.ROOT, "%.3f", rate));
    }
    return String.join(",", text);
  }

  /** Reads the records of each file, skipping lines that are not records. */
  static List<String[]> readRecords(List<String> files) throws IOException {
    if (files.isEmpty()) {
      throw new IllegalArgumentException("table needs at least one file of records");
    }
    List<String[]> records = new ArrayList<>();
    for (String file : files) {
      for (String line : Files.readAllLines(Path.of(file))) {
        String[] fields = line.split("\t", -1);
        if (fields.length >= 4 && ComparisonTable.KINDS.contains(fields[0])) {
          records.add(fields);
        }
      }
    }
    return records;
  }
}
