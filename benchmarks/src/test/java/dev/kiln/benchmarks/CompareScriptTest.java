package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.kiln.keypoints.model.ModelPresets;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs {@code compare.sh} in a copy of the repository layout that it expects, and checks its
 * messages for rejected options, which output folders a failed run leaves behind, and which models
 * the final table lists.
 *
 * <p>The copy contains the script, a {@code bin/java-home} that prints this JVM's home, a {@code
 * kiln} launcher with an empty {@code memory_options} line, and a {@code target/} whose {@code
 * classpath.txt} is this test's class path, so the kiln side is the real {@link Compare}. The
 * PyTorch side is a stand-in script chosen per test through {@code PYTHON}. The test of the final
 * table, and the tests of rejected values in case a value is accepted, also replace the kiln side's
 * timed commands, because they take half a minute or more.
 */
class CompareScriptTest {

  private static final long TIMEOUT_SECONDS = 120;

  /** The start of the Usage lines in the header of {@code compare.sh}. */
  private static final String SCRIPT_USAGE = "Usage: benchmarks/compare.sh [--threads N]";

  /**
   * A stand-in for {@code pytorch_bench.py} that prints one fixed record per command. Like the real
   * script, {@code describe} covers the models of {@code --models}, and all four presets when that
   * option is missing, and it prints the record of each model from the file that {@code
   * DESCRIBE_RECORDS} names. Where {@code CALLS} is set, each call of {@code run} appends {@code
   * pytorch MODE} to the file that it names, and each call of {@code gemm} appends {@code pytorch
   * gemm} and prints that file's line count as its rate, so that a test can tell the rounds apart.
   */
  private static final String PYTHON_SIDE =
      """
      [ "$1" = -c ] && exit 0
      command="$2"
      models=default,naimishnet,lenet-20m,lenet-48m
      mode=""
      shift 2
      while [ $# -gt 0 ]; do
        [ "$1" = --models ] && models="$2"
        [ "$1" = --modes ] && mode="$2"
        shift
      done
      case "$command" in
        describe)
          for model in ${models//,/ }; do
            awk -F'\\t' -v model="$model" '$3 == model' "$DESCRIBE_RECORDS"
          done ;;
        run)
          [ -n "${CALLS:-}" ] && echo "pytorch $mode" >>"$CALLS"
          printf 'info\\tpytorch\\tcpus\\t%s\\n' "$(nproc)"
          printf 'throughput\\tpytorch\\tnaimishnet\\t2\\ttrain\\t1.0\\n' ;;
        rss) printf 'rss\\tpytorch\\tlenet-20m\\t10\\ttrain\\t1024\\n' ;;
        gemm)
          rate=1.0
          if [ -n "${CALLS:-}" ]; then
            echo "pytorch gemm" >>"$CALLS"
            rate="$(wc -l <"$CALLS").0"
          fi
          printf 'info\\topenblas\\tnumpy\\t0.0-stand-in\\n'
          printf 'gemm\\topenblas\\t1024\\t%s\\n' "$rate" ;;
      esac
      """;

  @TempDir Path root;
  private Path script;
  private Path target;

  /** The describe records of the PyTorch stand-in: kiln's, unless a test changes them. */
  private Path describeRecords;

  @BeforeEach
  void buildLayout() throws IOException {
    Path benchmarks = Files.createDirectories(root.resolve("benchmarks"));
    script = benchmarks.resolve("compare.sh");
    Files.copy(Path.of("compare.sh").toAbsolutePath(), script);
    executable(script);

    Path javaHome = root.resolve("bin/java-home");
    Files.createDirectories(javaHome.getParent());
    Files.writeString(javaHome, "#!/bin/sh\necho '" + System.getProperty("java.home") + "'\n");
    executable(javaHome);
    Files.writeString(root.resolve("kiln"), "#!/bin/sh\nmemory_options=()\n");

    target = benchmarks.resolve("target");
    Path compareClass = target.resolve("classes/dev/kiln/benchmarks/Compare.class");
    Files.createDirectories(compareClass.getParent());
    try (InputStream in =
        Compare.class.getClassLoader().getResourceAsStream("dev/kiln/benchmarks/Compare.class")) {
      Files.write(compareClass, in.readAllBytes());
    }
    Files.writeString(target.resolve("classpath.txt"), System.getProperty("java.class.path"));

    describeRecords = root.resolve("describe.tsv");
    List<String> records = new ArrayList<>();
    for (String model : ModelPresets.names()) {
      records.add(Compare.describeRecord("pytorch", model));
    }
    Files.write(describeRecords, records);
  }

  @Test
  void unknownModelLeavesNoFolder() throws Exception {
    Run run = run(Map.of("PYTHON", root.resolve("no-python").toString()), "no-such-model");

    assertEquals(2, run.status(), run.output());
    assertTrue(run.output().contains("unknown model preset 'no-such-model'"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void missingPythonStopsBeforeRun() throws Exception {
    Path python = root.resolve("no-python");

    Run run = run(Map.of("PYTHON", python.toString()), "default");

    assertEquals(2, run.status(), run.output());
    assertTrue(run.output().contains("PYTHON=" + python + " was not found"), run.output());
    assertFalse(run.output().contains("only kiln's side runs"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void failureBeforeTimingsRemovesFolder() throws Exception {
    Path python = stub("python", "[ \"$1\" = -c ] && exit 0\necho 'stand-in fails' >&2\nexit 5\n");

    Run run = run(Map.of("PYTHON", python.toString()), "default");

    assertEquals(5, run.status(), run.output());
    assertTrue(run.output().contains("stand-in fails"), run.output());
    assertTrue(run.output().contains("failed before any timings were recorded"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void blasCheckStopsBeforeTimings() throws Exception {
    useFakeTimings();
    Path python =
        stub(
            "python",
            """
            [ "$1" = -c ] && exit 0
            if [ "$2" = check ]; then
              echo 'pytorch_bench.py: NumPy calls the BLAS library libblas.so.3' >&2
              exit 4
            fi
            echo "pytorch $2" >>"$CALLS"
            """);
    Path calls = root.resolve("calls.txt");

    Run run = run(Map.of("PYTHON", python.toString(), "CALLS", calls.toString()), "default");

    assertEquals(4, run.status(), run.output());
    assertTrue(run.output().contains("NumPy calls the BLAS library libblas.so.3"), run.output());
    assertFalse(Files.exists(calls), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void existingFolderIsKept() throws Exception {
    Path python = stub("python", "[ \"$1\" = -c ] && exit 0\nexit 5\n");
    Path date = stub("date", "echo 20990101-000000\n");
    Path existing = Files.createDirectories(target.resolve("compare-20990101-000000"));
    Files.writeString(existing.resolve("table.txt"), "an earlier run");
    String path = date.getParent() + ":" + System.getenv("PATH");

    Run run = run(Map.of("PYTHON", python.toString(), "PATH", path), "default");

    assertEquals(1, run.status(), run.output());
    assertTrue(run.output().contains("cannot create " + existing), run.output());
    assertEquals("an earlier run", Files.readString(existing.resolve("table.txt")));
    assertFalse(run.output().contains("was removed"), run.output());
  }

  @Test
  void unknownOptionPrintsScriptUsage() throws Exception {
    Run run = runScript(Map.of(), "--bogus");

    assertEquals(2, run.status(), run.output());
    List<String> lines = run.output().lines().toList();
    assertEquals("compare.sh: unknown option '--bogus'", lines.get(0), run.output());
    assertTrue(lines.get(1).startsWith(SCRIPT_USAGE), run.output());
    assertEquals(1, linesContaining(run.output(), "--bogus").size(), run.output());
  }

  @Test
  void valueRejectedByCompareGetsScriptUsage() throws Exception {
    Run run = runScript(Map.of(), "--batches", "0");

    assertEquals(2, run.status(), run.output());
    assertEquals(
        List.of("compare.sh: invalid value '0' for --batches: expected a whole number, 1 or more"),
        linesContaining(run.output(), "--batches: "));
    assertTrue(run.output().contains(SCRIPT_USAGE), run.output());
    assertFalse(run.output().contains("Usage: Compare"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  /**
   * Invalid values of the options that the script passes to Compare, each with the reason that the
   * script must print. A reason states the accepted range or form exactly, so that {@code -1} for
   * {@code --warmup} is not called "not a whole number".
   */
  static Stream<Arguments> rejectedValues() {
    String presets = String.join(", ", ModelPresets.names());
    return Stream.of(
        arguments(
            "--models",
            "default,default",
            "'default' is listed more than once, so list each preset once"),
        arguments(
            "--models",
            "lenet-20m,default,lenet-20m",
            "'lenet-20m' is listed more than once, so list each preset once"),
        arguments(
            "--batches", "10,10", "'10' is listed more than once, so list each batch size once"),
        arguments(
            "--batches", "10,32,10", "'10' is listed more than once, so list each batch size once"),
        arguments(
            "--models", "default,", "the list contains an empty preset, so remove the extra comma"),
        arguments(
            "--models",
            "default,,lenet-20m",
            "the list contains an empty preset, so remove the extra comma"),
        arguments(
            "--models", ",default", "the list contains an empty preset, so remove the extra comma"),
        arguments(
            "--batches", "10,", "the list contains an empty batch size, so remove the extra comma"),
        arguments(
            "--batches", ",10", "the list contains an empty batch size, so remove the extra comma"),
        arguments("--models", "", "the list names no preset. Use one or more of " + presets),
        arguments("--models", ",", "the list names no preset. Use one or more of " + presets),
        arguments("--batches", "", "the list names no batch size. Use one or more, such as 10,32"),
        arguments("--warmup", "-1", "expected a whole number, 0 or more"),
        arguments("--warmup", "two", "expected a whole number, 0 or more"),
        arguments("--repeats", "0", "expected a whole number, 1 or more"),
        arguments("--steps", "0", "expected a whole number, 1 or more"),
        arguments("--steps", "99999999999", "expected a whole number from 1 to 2147483647"),
        arguments("--warmup-seconds", "-1", "expected seconds, 0 or more, written like 2 or 0.5"),
        arguments("--repeat-seconds", "1e3", "expected seconds, 0 or more, written like 2 or 0.5"),
        arguments("--repeat-seconds", "2f", "expected seconds, 0 or more, written like 2 or 0.5"));
  }

  @ParameterizedTest(name = "{0} ''{1}''")
  @MethodSource("rejectedValues")
  void invalidValuePrintsExactReason(String option, String value, String reason) throws Exception {
    // If the value were accepted, the stand-ins would keep the run that follows short.
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);

    Run run = runScript(Map.of("PYTHON", python.toString()), option, value);

    assertEquals(2, run.status(), run.output());
    String expected = "compare.sh: invalid value '" + value + "' for " + option + ": " + reason;
    assertEquals(List.of(expected), linesContaining(run.output(), "compare.sh: "), run.output());
    assertTrue(run.output().contains(SCRIPT_USAGE), run.output());
    assertFalse(run.output().contains("unknown model preset"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void zeroThreadsPrintsRange() throws Exception {
    Run run = runScript(Map.of(), "--threads", "0");

    assertEquals(2, run.status(), run.output());
    assertEquals(
        List.of("compare.sh: invalid value '0' for --threads: expected a whole number, 1 or more"),
        linesContaining(run.output(), "compare.sh: "));
    assertTrue(run.output().contains(SCRIPT_USAGE), run.output());
  }

  /**
   * More threads than usable CPUs are rejected before anything runs. A number past 64 bits must not
   * reach PyTorch, which aborts with status 134 on it.
   */
  @ParameterizedTest
  @MethodSource("threadsAboveCpuCount")
  void threadsAboveCpuCountRejected(String threads) throws Exception {
    int cpus = Runtime.getRuntime().availableProcessors();

    Run run = runScript(Map.of(), "--threads", threads);

    assertEquals(2, run.status(), run.output());
    assertEquals(
        List.of(
            "compare.sh: invalid value '"
                + threads
                + "' for --threads: expected a whole number from 1 to "
                + cpus
                + ", the CPUs that this process may use"),
        linesContaining(run.output(), "compare.sh: "));
    assertTrue(run.output().contains(SCRIPT_USAGE), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  static Stream<String> threadsAboveCpuCount() {
    int cpus = Runtime.getRuntime().availableProcessors();
    return Stream.of(String.valueOf(cpus + 1), "0" + (cpus + 1), "99999999999999999999");
  }

  @Test
  void modesRejectRepeatsAndEmpties() {
    IllegalArgumentException repeated =
        assertThrows(
            IllegalArgumentException.class,
            () -> CompareOptions.parse(new String[] {"--modes", "train,train"}));
    assertEquals(
        "invalid value 'train,train' for --modes: 'train' is listed more than once, so list each"
            + " mode once",
        repeated.getMessage());
    IllegalArgumentException empty =
        assertThrows(
            IllegalArgumentException.class,
            () -> CompareOptions.parse(new String[] {"--modes", "infer,"}));
    assertEquals(
        "invalid value 'infer,' for --modes: the list contains an empty mode, so remove the extra"
            + " comma",
        empty.getMessage());
  }

  @Test
  void validListsAreKeptInOrder() {
    CompareOptions options =
        CompareOptions.parse(
            new String[] {
              "--models", "lenet-20m,default", "--batches", "32, 10", "--modes", "infer"
            });

    assertEquals(List.of("lenet-20m", "default"), options.models);
    assertEquals(List.of(32, 10), options.batches);
    assertEquals(List.of("infer"), options.modes);
  }

  @Test
  void helpDocumentsEnvironment() throws Exception {
    Run run = runScript(Map.of(), "--help");

    assertEquals(0, run.status(), run.output());
    List<String> lines = run.output().lines().toList();
    assertTrue(lines.get(0).startsWith("Runs the same work in kiln and in PyTorch"), run.output());
    assertEquals(
        "Records and the table are kept in benchmarks/target/compare-DATE/.",
        lines.get(lines.size() - 1));
    assertEquals(1, linesContaining(run.output(), "PYTHON is the interpreter").size());
    assertEquals(1, linesContaining(run.output(), "KILN_FMA_LANES").size());
    assertEquals(List.of(), linesContaining(run.output(), "set -euo"));
  }

  @Test
  void unknownModelListsOnlyPresets() throws Exception {
    Run run = runScript(Map.of(), "--models", "default,nosuch");

    assertEquals(2, run.status(), run.output());
    String presets = String.join(", ", ModelPresets.names());
    assertEquals(
        List.of("compare.sh: unknown model preset 'nosuch' in --models: use one of " + presets),
        linesContaining(run.output(), "nosuch"));
    assertFalse(run.output().contains("model file"), run.output());
    assertTrue(run.output().contains(SCRIPT_USAGE), run.output());
  }

  @Test
  void tableListsOnlyRequestedModels() throws Exception {
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);

    Run run =
        runScript(
            Map.of("PYTHON", python.toString()),
            "--threads",
            "1",
            "--models",
            "naimishnet",
            "--batches",
            "2");

    assertEquals(0, run.status(), run.output());
    List<String> checkedModels =
        run.output().lines().filter(line -> line.startsWith("model ")).toList();
    assertEquals(1, checkedModels.size(), run.output());
    assertTrue(checkedModels.get(0).startsWith("model naimishnet: "), run.output());
    List<String> folders = compareFolders();
    assertEquals(1, folders.size(), run.output());
    Path records = target.resolve(folders.get(0));
    assertEquals(List.of("naimishnet"), describedModels(records.resolve("kiln.tsv")));
    assertEquals(List.of("naimishnet"), describedModels(records.resolve("pytorch.tsv")));
  }

  @Test
  void differentModelExitsWithoutVerdict() throws Exception {
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);
    List<String> records = new ArrayList<>();
    for (String line : Files.readAllLines(describeRecords)) {
      records.add(line.replace("dropout p=0.1;", "dropout p=0.15;"));
    }
    Files.write(describeRecords, records);

    Run run =
        runScript(
            Map.of("PYTHON", python.toString()),
            "--threads",
            "1",
            "--models",
            "naimishnet",
            "--batches",
            "2");

    assertEquals(1, run.status(), run.output());
    assertTrue(
        run.output().contains("model naimishnet: DIFFERENT in kiln and PyTorch"), run.output());
    List<String> rows =
        run.output().lines().filter(line -> line.startsWith("train  naimishnet")).toList();
    assertEquals(1, rows.size(), run.output());
    assertTrue(rows.get(0).endsWith("not comparable"), run.output());
    assertTrue(run.output().contains("records and table: "), run.output());
    assertEquals(1, compareFolders().size(), run.output());
  }

  @Test
  void sidesTakeTurnsWithLoadRecords() throws Exception {
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);
    Path calls = root.resolve("calls.txt");

    Run run =
        runScript(
            Map.of("PYTHON", python.toString(), "CALLS", calls.toString()),
            "--threads",
            "1",
            "--models",
            "naimishnet",
            "--batches",
            "2");

    assertEquals(0, run.status(), run.output());
    assertEquals(
        List.of(
            "kiln train",
            "pytorch train",
            "pytorch infer",
            "kiln infer",
            "kiln gemm",
            "pytorch gemm",
            "pytorch gemm",
            "kiln gemm"),
        Files.readAllLines(calls));
    Path records = target.resolve(compareFolders().get(0));
    for (String side : List.of("kiln", "pytorch")) {
      List<String> loads =
          Files.readAllLines(records.resolve(side + ".tsv")).stream()
              .filter(line -> line.startsWith("load\t" + side + "\tnaimishnet\t2\t"))
              .toList();
      assertEquals(2, loads.size(), side + ": " + loads);
      for (String load : loads) {
        // A mean of 10 samples of runnable threads, such as 0.0 or 1.3.
        assertTrue(load.matches(".*\t[0-9]+\\.[0-9]"), load);
      }
    }
  }

  /**
   * With fewer threads than CPUs, both sides run on as many CPUs as threads, so that the JVM's
   * compiler and collector threads do not get spare CPUs that PyTorch's side leaves idle.
   */
  @Test
  void fewerThreadsPinBothSides() throws Exception {
    assumeTrue(Runtime.getRuntime().availableProcessors() >= 2, "needs 2 or more CPUs");
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);

    Run run = run(Map.of("PYTHON", python.toString()), "naimishnet");

    assertEquals(0, run.status(), run.output());
    Path records = target.resolve(compareFolders().get(0));
    assertEquals(
        List.of("info\tkiln\tcpus\t1", "info\tkiln\tcpus\t1"),
        recordsOfKind(records.resolve("kiln.tsv"), "info"));
    assertEquals(
        List.of("info\tpytorch\tcpus\t1", "info\tpytorch\tcpus\t1"),
        recordsOfKind(records.resolve("pytorch.tsv"), "info").stream()
            .filter(line -> line.contains("cpus"))
            .toList());
    assertTrue(run.output().contains("threads on each side: 1, on CPUs "), run.output());
  }

  @Test
  void gemmRoundsJoinIntoOneRecord() throws Exception {
    useFakeTimings();
    Path python = stub("python", PYTHON_SIDE);
    Path calls = root.resolve("calls.txt");

    Run run =
        runScript(
            Map.of("PYTHON", python.toString(), "CALLS", calls.toString()),
            "--threads",
            "1",
            "--models",
            "naimishnet",
            "--batches",
            "2");

    assertEquals(0, run.status(), run.output());
    // Calls 1 to 4 are the model rows. In the matrix product, kiln goes first in round 1 (calls 5
    // and 6) and NumPy goes first in round 2 (calls 7 and 8).
    Path records = target.resolve(compareFolders().get(0));
    assertEquals(
        List.of("gemm\tkiln\t1024\t5.0,8.0"), recordsOfKind(records.resolve("kiln.tsv"), "gemm"));
    assertEquals(
        List.of("gemm\topenblas\t1024\t6.0,7.0"),
        recordsOfKind(records.resolve("pytorch.tsv"), "gemm"));
    assertEquals(
        List.of("info\topenblas\tnumpy\t0.0-stand-in"),
        recordsOfKind(records.resolve("pytorch.tsv"), "info\topenblas"));
    String row =
        run.output()
            .lines()
            .filter(line -> line.startsWith("1024^3 float32"))
            .findFirst()
            .orElse("");
    assertTrue(row.contains("5.00 / 6.50 / 8.00"), run.output());
    assertTrue(row.contains("6.00 / 6.50 / 7.00"), run.output());
  }

  /** Returns the lines of a file of records whose kind is {@code kind}. */
  private static List<String> recordsOfKind(Path file, String kind) throws IOException {
    return Files.readAllLines(file).stream().filter(line -> line.startsWith(kind + "\t")).toList();
  }

  /** The exit status and the merged stdout and stderr of one run of the script. */
  private record Run(int status, String output) {}

  private Run run(Map<String, String> environment, String models) throws Exception {
    return runScript(environment, "--threads", "1", "--models", models, "--batches", "2");
  }

  private Run runScript(Map<String, String> environment, String... arguments) throws Exception {
    List<String> command = new ArrayList<>(List.of("bash", script.toString()));
    command.addAll(List.of(arguments));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().put("DESCRIBE_RECORDS", describeRecords.toString());
    builder.environment().putAll(environment);
    Process process = builder.start();
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("compare.sh did not finish within " + TIMEOUT_SECONDS + " s");
    }
    return new Run(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }

  /**
   * Points {@code bin/java-home} at a stand-in {@code java} that prints one fixed record for each
   * of Compare's timed commands ({@code run}, {@code rss}, {@code gemm}) and runs the real {@code
   * java} for everything else. Where {@code CALLS} is set, each call of {@code run} appends {@code
   * kiln MODE} to the file that it names, and each call of {@code gemm} appends {@code kiln gemm}
   * and prints that file's line count as its rate.
   */
  private void useFakeTimings() throws IOException {
    Path home = root.resolve("fake-jdk");
    Path java = Files.createDirectories(home.resolve("bin")).resolve("java");
    String realJava = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Files.writeString(
        java,
        """
        #!/bin/bash
        command=""
        mode=""
        previous=""
        for argument in "$@"; do
          [ "$previous" = dev.kiln.benchmarks.Compare ] && command="$argument"
          [ "$previous" = --modes ] && mode="$argument"
          previous="$argument"
        done
        case "$command" in
          run)
            [ -n "${CALLS:-}" ] && echo "kiln $mode" >>"$CALLS"
            printf 'info\\tkiln\\tcpus\\t%%s\\n' "$(nproc)"
            printf 'throughput\\tkiln\\tnaimishnet\\t2\\ttrain\\t1.0\\n' ;;
          rss) printf 'rss\\tkiln\\tlenet-20m\\t10\\ttrain\\t1024\\n' ;;
          gemm)
            rate=1.0
            if [ -n "${CALLS:-}" ]; then
              echo "kiln gemm" >>"$CALLS"
              rate="$(wc -l <"$CALLS").0"
            fi
            printf 'gemm\\tkiln\\t1024\\t%%s\\n' "$rate" ;;
          *) exec '%s' "$@" ;;
        esac
        """
            .formatted(realJava));
    executable(java);
    Files.writeString(root.resolve("bin/java-home"), "#!/bin/sh\necho '" + home + "'\n");
  }

  /** Returns the models of the {@code describe} records in a file of records. */
  private static List<String> describedModels(Path records) throws IOException {
    return Files.readAllLines(records).stream()
        .filter(line -> line.startsWith("describe\t"))
        .map(line -> line.split("\t")[2])
        .toList();
  }

  private static List<String> linesContaining(String output, String text) {
    return output.lines().filter(line -> line.contains(text)).toList();
  }

  /** Writes an executable shell script named {@code name} into a folder of stand-ins. */
  private Path stub(String name, String body) throws IOException {
    Path file = Files.createDirectories(root.resolve("stubs")).resolve(name);
    Files.writeString(file, "#!/bin/bash\n" + body);
    executable(file);
    return file;
  }

  private List<String> compareFolders() throws IOException {
    try (Stream<Path> entries = Files.list(target)) {
      return entries
          .map(entry -> entry.getFileName().toString())
          .filter(name -> name.startsWith("compare-"))
          .sorted()
          .toList();
    }
  }

  private static void executable(Path file) throws IOException {
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }
}
