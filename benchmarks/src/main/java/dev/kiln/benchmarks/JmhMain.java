package dev.kiln.benchmarks;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs JMH with its usual command-line options, then prints one summary line per benchmark and
 * parameter set. The columns are milliseconds per call, GFLOP/s of conv, linear and GEMM work,
 * billions of input values per second for the other layers, and images per second for the
 * end-to-end benchmarks. These come from {@link WorkCounters}, which JMH reports as rates in
 * throughput mode.
 *
 * <p>A benchmark that fails (on a device that cannot be used, say) stops the run and makes the exit
 * status 1, so that a script notices; pass {@code -foe false} to run the others anyway.
 */
public final class JmhMain {
  private JmhMain() {}

  public static void main(String[] args) throws RunnerException {
    CommandLineOptions options;
    try {
      options = new CommandLineOptions(args);
    } catch (CommandLineOptionException e) {
      System.err.println("invalid JMH option: " + e.getMessage() + " (run with -h for the list)");
      System.exit(2);
      return;
    }
    if (options.shouldHelp() || options.shouldList() || options.shouldListWithParams()) {
      // Help and listing print their own output and run nothing.
      new Runner(options).list();
      return;
    }
    Options effective =
        options.shouldFailOnError().hasValue()
            ? options
            : new OptionsBuilder().parent(options).shouldFailOnError(true).build();
    Collection<RunResult> results;
    try {
      results = new Runner(effective).run();
    } catch (RunnerException e) {
      System.err.println(
          "a benchmark failed, so the run stopped: "
              + e.getMessage()
              + " (the error is above; pass -foe false to run the other benchmarks anyway)");
      System.exit(1);
      return;
    }
    System.out.println();
    System.out.print(summary(results));
  }

  /** Formats the summary table described on the class. */
  static String summary(Collection<RunResult> results) {
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {"benchmark", "parameters", "ms/call", "GFLOP/s", "Gvalues/s", "images/s"});
    for (RunResult result : results) {
      String benchmark = result.getParams().getBenchmark();
      benchmark =
          benchmark.substring(benchmark.lastIndexOf('.', benchmark.lastIndexOf('.') - 1) + 1);
      List<String> parameters = new ArrayList<>();
      for (String key : result.getParams().getParamsKeys()) {
        parameters.add(key + "=" + result.getParams().getParam(key));
      }
      Result<?> primary = result.getPrimaryResult();
      double callsPerSecond = primary.getScore();
      Map<String, ?> secondary = result.getSecondaryResults();
      rows.add(
          new String[] {
            benchmark,
            String.join(" ", parameters),
            format(1000.0 / callsPerSecond),
            format(rate(secondary, "flop") / 1e9),
            format(rate(secondary, "values") / 1e9),
            format(rate(secondary, "images"))
          });
    }
    return Tables.format(rows, 2);
  }

  private static double rate(Map<String, ?> secondary, String counter) {
    return secondary.get(counter) instanceof Result<?> result ? result.getScore() : 0;
  }

  private static String format(double value) {
    if (value == 0 || !Double.isFinite(value)) {
      return "-";
    }
    if (value >= 100) {
      return String.format(Locale.ROOT, "%.0f", value);
    }
    if (value >= 10) {
      return String.format(Locale.ROOT, "%.1f", value);
    }
    return String.format(Locale.ROOT, "%.3g", value);
  }
}
