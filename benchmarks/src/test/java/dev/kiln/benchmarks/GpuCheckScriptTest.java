package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Checks the shell functions of {@code gpu-check/report-lib.sh} that turn PyTorch's rates into the
 * kiln/PyTorch verdict, and the options with which {@code gpu-check.sh} starts both sides' timers.
 * The whole script needs a bundle and a GPU, so these tests read it instead of running it.
 */
class GpuCheckScriptTest {
  private static final Path REPORT_LIB = Path.of("gpu-check/report-lib.sh").toAbsolutePath();
  private static final Path GPU_CHECK = Path.of("gpu-check/gpu-check.sh");

  @Test
  void evenCountMedianIsMeanOfMiddleSteps() throws Exception {
    // Steps of 100 and 50 ms: the median step is 75 ms, not the step at the mean rate (66.7 ms).
    assertEquals("75", bash("median_step_ms 10 100,200"));
    assertEquals("100", bash("median_step_ms 10 200,100,50"));
  }

  @Test
  void medianStepKeepsFullPrecision() throws Exception {
    assertEquals("2333.3333333333335", bash("median_step_ms 7 3,3"));
  }

  @Test
  void ratioJustAboveOneIsNotMet() throws Exception {
    assertEquals("not met", bash("verdict \"$(step_ratio 10.04 10)\" '<=' 1.0"));
    assertEquals("met", bash("verdict \"$(step_ratio 10 10)\" '<=' 1.0"));
    assertEquals("1.00", bash("rounded 2 \"$(step_ratio 10.04 10)\""));
  }

  @Test
  void timersUseLauncherMemoryOptions() throws IOException {
    String launcher = Files.readString(Path.of("../kiln"));
    Matcher memory = Pattern.compile("(?m)^memory_options=\\((.*)\\)$").matcher(launcher);
    assertTrue(memory.find(), "no memory_options line in the kiln launcher");
    String script = Files.readString(GPU_CHECK);
    Matcher options = Pattern.compile("(?m)^kiln_jvm_options=\\((.*)\\)$").matcher(script);
    assertTrue(options.find(), "no kiln_jvm_options line in gpu-check.sh");

    assertEquals(memory.group(1) + " -Djava.awt.headless=true", options.group(1));
    for (String timer : new String[] {"TrainingStepTimer", "DeviceGemmTimer", "DeviceLayerTimer"}) {
      assertTrue(
          commandOf(script, "dev.kiln.benchmarks." + timer).contains("\"${kiln_jvm_options[@]}\""),
          timer + " runs without the launcher's options");
    }
  }

  @Test
  void bothSidesWarmUpForSameTime() throws IOException {
    String script = Files.readString(GPU_CHECK);
    Matcher seconds = Pattern.compile("(?m)^warmup_seconds=([0-9]+)$").matcher(script);
    assertTrue(seconds.find(), "no warmup_seconds line in gpu-check.sh");
    // benchmarks/README.md: the JIT compiler needs at least 2 s.
    assertTrue(Integer.parseInt(seconds.group(1)) >= 2, "warmup_seconds=" + seconds.group(1));

    String kiln = commandOf(script, "dev.kiln.benchmarks.TrainingStepTimer");
    assertTrue(kiln.contains("--warmup-seconds \"$warmup_seconds\""), kiln);
    String pytorch = commandOf(script, "python3 \"$pytorch_bench\" run");
    assertTrue(pytorch.contains("--warmup-seconds \"$warmup_seconds\""), pytorch);
    assertTrue(pytorch.contains("--warmup \"$train_warmup\""), pytorch);
    assertFalse(script.contains("--warmup-seconds 0"), "a warm-up without a time bound is left");
  }

  /**
   * Returns the shell command that contains {@code marker}: its line with the continued lines
   * before and after it.
   */
  private static String commandOf(String script, String marker) {
    String[] lines = script.split("\n");
    for (int i = 0; i < lines.length; i++) {
      if (lines[i].contains(marker)) {
        int first = i;
        while (first > 0 && lines[first - 1].endsWith("\\")) {
          first--;
        }
        int last = i;
        while (lines[last].endsWith("\\")) {
          last++;
        }
        StringBuilder command = new StringBuilder();
        for (int j = first; j <= last; j++) {
          command.append(lines[j]).append('\n');
        }
        return command.toString();
      }
    }
    throw new AssertionError("no command with " + marker + " in gpu-check.sh");
  }

  /** Runs {@code command} in bash after sourcing report-lib.sh and returns its standard output. */
  private static String bash(String command) throws Exception {
    Process process =
        new ProcessBuilder("bash", "-c", "source '" + REPORT_LIB + "' && " + command)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(30, TimeUnit.SECONDS), "bash did not finish: " + command);
    assertEquals(0, process.exitValue(), command + " printed " + output);
    return output.strip();
  }
}
