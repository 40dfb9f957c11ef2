package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.device.DeviceWork;
import dev.kiln.core.tensor.Device;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checks the shell functions of {@code gpu-check/report-lib.sh} that pass kiln's step times and
 * PyTorch's rates to {@code GpuReport compare-steps} and read its verdict back, and the options
 * with which {@code gpu-check.sh} starts both sides' timers. The whole script needs a bundle and a
 * GPU, so these tests read it instead of running it.
 */
class GpuCheckScriptTest {
  private static final Path REPORT_LIB = Path.of("gpu-check/report-lib.sh").toAbsolutePath();
  private static final Path GPU_CHECK = Path.of("gpu-check/gpu-check.sh");
  private static final Path EVALUATE_LIB = Path.of("gpu-check/evaluate-lib.sh").toAbsolutePath();

  @Test
  void timerStepTimesReachVerdict(@TempDir Path work) throws Exception {
    // kiln's steps of 9.5 to 9.9 ms against PyTorch's of 10 to 12.5 ms at batch 64.
    String result =
        TrainingStepTimer.resultLine(
            "device=cuda:0 preset=lenet-20m batch=64 threads=default",
            64,
            new TrainingStepTimer.Timing(5, 3.0, new double[] {9.9, 9.5, 9.7}),
            0.5);
    Files.writeString(
        work.resolve("training.log"),
        "== a stage line\n" + result + "\n" + String.join("\n", workLines()) + "\n");

    String output =
        steps(
            work,
            "kiln=\"$(step_times \"$work/training.log\")\"; echo \"$kiln\";"
                + " compare_steps 64 6400,5120,6000 \"$kiln\" \"$work/steps.log\";"
                + " echo \"$step_pytorch_ms|$step_kiln_ms|$step_ratio|$step_verdict\";"
                + " step_spread \"$step_kiln_ms\"");

    assertEquals(
        List.of(
            "9.9,9.5,9.7",
            "10.0 10.666666666666666 12.5|9.5 9.7 9.9|0.9093749999999999|met",
            "9.50 / 9.70 / 9.90"),
        output.lines().toList());
    assertTrue(
        Files.readString(work.resolve("steps.log")).contains("verdict=met"),
        Files.readString(work.resolve("steps.log")));
  }

  @Test
  void workLinesLeaveResultRow(@TempDir Path work) throws Exception {
    String result =
        TrainingStepTimer.resultLine(
            "device=cuda:0 preset=default batch=32 threads=default",
            32,
            new TrainingStepTimer.Timing(5, 3.0, new double[] {4.5, 4.0}),
            0.25);
    Path log = work.resolve("training-default-32-auto.log");
    Files.writeString(log, result + "\n" + String.join("\n", workLines()) + "\n");

    String output =
        bash(
            "device=cuda:0; stage_rc=0; training_timed=0; summarize_training default '"
                + log
                + "'; echo \"$training_timed|$training_missing|$training_row\"");

    assertEquals("1||| default | " + result + " |", output);
  }

  /** Returns the lines that the timer prints after its result line, for a made-up step. */
  private static List<String> workLines() {
    DeviceWork work =
        new DeviceWork(
            Map.of("kiln_optimizers_adam", 42L),
            Map.of("cudnn.convolutionForward", 12L),
            0,
            0,
            3,
            12,
            0,
            0,
            0,
            90,
            90,
            0,
            0);
    return TrainingStepTimer.workLines(Device.parse("cuda:0"), work, 3);
  }

  @Test
  void ratioJustAboveOneIsNotMet(@TempDir Path work) throws Exception {
    String output =
        steps(
            work,
            "compare_steps 10 1000,1000 10.04,10.04 \"$work/steps.log\";"
                + " echo \"$step_verdict $(rounded 3 \"$step_ratio\")\"");

    assertEquals("not met 1.004", output);
  }

  @Test
  void overlappingStepsAreTie(@TempDir Path work) throws Exception {
    // kiln's median is the lower, but its 11 ms step lies within PyTorch's 10 to 12.5 ms.
    String output =
        steps(work, "compare_steps 1 100,80 9,9.5,11 \"$work/steps.log\"; echo \"$step_verdict\"");

    assertEquals(ComparisonTable.TIE, output);
  }

  @Test
  void missingKilnStepsGivePytorchOnly(@TempDir Path work) throws Exception {
    String output =
        steps(
            work,
            "compare_steps 10 100,200 '' \"$work/steps.log\";"
                + " echo \"$step_pytorch_ms|$step_kiln_ms|$step_verdict\"");

    // Steps of 100 and 50 ms: the median is 75 ms, not the step at the mean rate (66.7 ms).
    assertEquals("50.0 75.0 100.0||", output);
  }

  @Test
  void invalidStepTimesFailWithReason(@TempDir Path work) throws Exception {
    String output =
        steps(
            work,
            "if compare_steps 10 100,200 1,,2 \"$work/steps.log\"; then echo passed; fi;"
                + " echo \"$step_error\"");

    assertEquals(
        "the step comparison (GpuReport compare-steps) failed with exit status 2: kiln's step"
            + " times (ms): invalid value '' at position 2 of '1,,2'; give finite numbers above"
            + " 0, separated by commas; usage: GpuReport compare-steps BATCH PYTORCH_RATES"
            + " [KILN_STEP_MS]",
        output);
  }

  /**
   * Runs {@code kiln evaluate} on cuda:0 where no GPU is usable, and checks that evaluate-lib.sh
   * reads its rejection as unmeasured with kiln's reason, not as a failure.
   */
  @Test
  void unusableGpuEvaluationIsUnmeasured(@TempDir Path work) throws Exception {
    CudaAvailability availability = CudaAvailability.check(0);
    assumeFalse(availability.usable(), "cuda:0 is usable here, so evaluate does not reject it");
    Path log = work.resolve("evaluate.log");
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process evaluate =
        new ProcessBuilder(
                java.toString(),
                "--enable-native-access=ALL-UNNAMED",
                "--add-modules",
                "jdk.incubator.vector",
                "-cp",
                System.getProperty("java.class.path"),
                "dev.kiln.keypoints.cli.Main",
                "evaluate",
                "--checkpoint",
                work.resolve("best.safetensors").toString(),
                "--device",
                "cuda:0")
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(evaluate.waitFor(60, TimeUnit.SECONDS), "kiln evaluate did not finish");

    String output =
        bash(
            "source '"
                + EVALUATE_LIB
                + "'; declare -A evaluate_result evaluate_rc evaluate_nme evaluate_seconds_of;"
                + " stage_rc="
                + evaluate.exitValue()
                + "; stage_seconds=1; stage_result='exit status 2 after 1 s'; overall_ok=true;"
                + " summarize_evaluate_run cuda:0 '"
                + log
                + "' '"
                + work.resolve("evaluation.json")
                + "'; echo \"${evaluate_result[cuda:0]}|${evaluate_rc[cuda:0]}|$overall_ok\"");

    assertEquals(2, evaluate.exitValue(), Files.readString(log));
    assertEquals(
        "unmeasured: " + availability.message().replaceAll("\\.$", "") + "|2|true", output);
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

  /**
   * Runs {@code command} in bash after sourcing report-lib.sh, with {@code java}, {@code
   * jvm_options} and {@code classpath} set so that {@code compare_steps} runs {@link GpuReport} on
   * this JVM, and {@code work} set to {@code folder}.
   */
  private static String steps(Path folder, String command) throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    return bash(
        "java='"
            + java
            + "'; jvm_options=(); classpath='"
            + System.getProperty("java.class.path")
            + "'; work='"
            + folder
            + "'; "
            + command);
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
