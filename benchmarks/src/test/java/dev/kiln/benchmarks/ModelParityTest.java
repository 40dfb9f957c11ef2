package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cpu.GemmBenchmark;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.annotations.Param;

/**
 * Checks that kiln's side of the comparison builds the same models as pytorch_bench.py, and that
 * the JMH parameter lists cover every case.
 */
class ModelParityTest {
  /**
   * Parameter counts that {@code pytorch_bench.py describe} printed with Debian 12's python3-torch
   * 1.13.1.
   */
  private static final Map<String, Long> PYTORCH_PARAMETERS = new LinkedHashMap<>();

  static {
    PYTORCH_PARAMETERS.put("default", 1_017_848L);
    PYTORCH_PARAMETERS.put("naimishnet", 7_623_096L);
    PYTORCH_PARAMETERS.put("lenet-20m", 19_923_756L);
    PYTORCH_PARAMETERS.put("lenet-48m", 48_673_896L);
  }

  /** Debian's interpreter, which python3-torch installs into. */
  private static final Path PYTHON = Path.of("/usr/bin/python3");

  @Test
  void parameterCountsMatchPytorch() {
    assertEquals(List.copyOf(PYTORCH_PARAMETERS.keySet()), ModelPresets.names());
    for (Map.Entry<String, Long> entry : PYTORCH_PARAMETERS.entrySet()) {
      ModelSpec spec = ModelPresets.byName(entry.getKey());
      assertEquals(entry.getValue(), spec.parameterCount(), entry.getKey() + " (spec)");
      long built = new KeypointWorkload(entry.getKey(), 1, "cpu", 1).model().parameterCount();
      assertEquals(entry.getValue(), built, entry.getKey() + " (built model)");
    }
  }

  /**
   * Runs the Python script when PyTorch is installed and compares every describe record, layer
   * settings included.
   */
  @Test
  void describeMatchesPythonScript() throws IOException, InterruptedException {
    Path script = Path.of("pytorch_bench.py").toAbsolutePath();
    assumeTrue(Files.isRegularFile(script), "pytorch_bench.py not found at " + script);
    assumeTrue(Files.isExecutable(PYTHON), PYTHON + " is not installed");
    Process process =
        new ProcessBuilder(PYTHON.toString(), script.toString(), "describe", "--threads", "1")
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), "pytorch_bench.py timed out");
    // Exit status 3 means PyTorch is missing, which is not a failure of kiln.
    assumeTrue(process.exitValue() != 3, "PyTorch is not installed for " + PYTHON);
    assertEquals(0, process.exitValue(), "pytorch_bench.py describe failed:\n" + output);

    // Each record has the parameter count, the output shapes and the layer settings.
    for (String model : ModelPresets.names()) {
      String expected = Compare.describeRecord("pytorch", model);
      assertTrue(
          output.lines().anyMatch(expected::equals),
          "no line\n" + expected + "\nin the output\n" + output);
    }
  }

  @Test
  void layerParamListsEveryCase() throws NoSuchFieldException {
    List<String> expected = LayerCase.all().stream().map(LayerCase::name).toList();
    assertEquals(expected, paramValues(LayerBenchmarkState.class, "layer"));
  }

  @Test
  void gemmParamListsEveryCase() throws NoSuchFieldException {
    List<String> expected = GemmCase.all().stream().map(GemmCase::name).toList();
    assertEquals(expected, paramValues(GemmBenchmark.class, "shape"));
  }

  @Test
  void everyLayerCaseParses() {
    for (LayerCase layerCase : LayerCase.all()) {
      assertEquals(layerCase, LayerCase.parse(layerCase.name()));
    }
  }

  @Test
  void gemmCaseMatchesConvGeometry() {
    // default/4-conv: 16 -> 32 channels, 3x3, padding 1, on 48x48, so 144 taps and 2304 positions.
    GemmCase forward = GemmCase.parse("default/4-conv:forward");
    assertEquals(List.of(32, 2304, 144), List.of(forward.m(), forward.n(), forward.k()));
    GemmCase inputGrad = GemmCase.parse("default/4-conv:input-grad");
    assertEquals(List.of(144, 2304, 32), List.of(inputGrad.m(), inputGrad.n(), inputGrad.k()));
    assertTrue(inputGrad.transA());
    GemmCase weightGrad = GemmCase.parse("default/4-conv:weight-grad");
    assertEquals(List.of(32, 144, 2304), List.of(weightGrad.m(), weightGrad.n(), weightGrad.k()));
    assertTrue(weightGrad.transB());
  }

  private static List<String> paramValues(Class<?> type, String field) throws NoSuchFieldException {
    Param param = type.getField(field).getAnnotation(Param.class);
    return new ArrayList<>(Arrays.asList(param.value()));
  }
}
