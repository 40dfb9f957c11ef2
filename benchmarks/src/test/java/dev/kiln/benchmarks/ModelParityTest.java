package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cpu.GemmBenchmark;
import dev.kiln.core.tensor.Tensor;
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
    Path script = requireScript();
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

  /**
   * Builds each preset in pytorch_bench.py with its seed and prints the largest absolute value of
   * each parameter, in the order of {@code model.parameters()}, one line per preset.
   */
  private static final String PRINT_PARAMETER_SCALES =
      """
      import importlib.util, sys, torch
      spec = importlib.util.spec_from_file_location("pytorch_bench", sys.argv[1])
      bench = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(bench)
      for name in bench.MODELS:
          torch.manual_seed(42)
          model = bench.build_model(torch.nn, name)
          scales = [repr(float(p.detach().abs().max())) for p in model.parameters()]
          print(name, " ".join(scales))
      """;

  /**
   * Compares the initial weights of both sides, parameter by parameter. The two sides draw from
   * different generators, so the values differ, but a parameter that one side fills with zeros or
   * draws from a wider range starts the training somewhere else. The largest absolute value of a
   * uniform draw lies close to the bound of its range, so 15% is far below the factors of sqrt(2)
   * or sqrt(3) by which the usual initializers differ.
   */
  @Test
  void initialScaleMatchesPythonScript() throws IOException, InterruptedException {
    Path script = requireScript();
    Process process =
        new ProcessBuilder(PYTHON.toString(), "-c", PRINT_PARAMETER_SCALES, script.toString())
            .redirectErrorStream(true)
            .start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), "python3 timed out");
    assumeTrue(!output.contains("No module named 'torch'"), "PyTorch is not installed");
    assertEquals(0, process.exitValue(), output);

    List<String> lines = output.lines().toList();
    assertEquals(ModelPresets.names(), lines.stream().map(line -> line.split(" ")[0]).toList());
    for (String line : lines) {
      String[] fields = line.split(" ");
      String model = fields[0];
      List<Tensor> parameters = new KeypointWorkload(model, 1, "cpu", 42).model().parameters();
      assertEquals(fields.length - 1, parameters.size(), model + ": parameter count");
      for (int i = 0; i < parameters.size(); i++) {
        double pytorch = Double.parseDouble(fields[i + 1]);
        double kiln = maxAbs(parameters.get(i));
        String where = model + " parameter " + i + ": kiln " + kiln + ", PyTorch " + pytorch;
        assertEquals(pytorch == 0, kiln == 0, where);
        assertEquals(pytorch, kiln, 0.15 * pytorch, where);
      }
    }
  }

  /** Returns pytorch_bench.py's path, or skips the test where it or the interpreter is missing. */
  private static Path requireScript() {
    Path script = Path.of("pytorch_bench.py").toAbsolutePath();
    assumeTrue(Files.isRegularFile(script), "pytorch_bench.py not found at " + script);
    assumeTrue(Files.isExecutable(PYTHON), PYTHON + " is not installed");
    return script;
  }

  private static double maxAbs(Tensor tensor) {
    double max = 0;
    for (int i = 0; i < tensor.numel(); i++) {
      max = Math.max(max, Math.abs(tensor.storage().get(i)));
    }
    return max;
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
