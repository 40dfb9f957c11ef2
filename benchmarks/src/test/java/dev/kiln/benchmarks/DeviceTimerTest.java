package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.device.DeviceMatmul;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Checks the argument parsing and output of {@link DeviceGemmTimer} and {@link DeviceLayerTimer}
 * without a GPU. The one full run, of the GEMM timer, uses the {@code emulated} device at size 32,
 * where cuBLAS is absent. A full run of the layer timer is left out, because even the smallest
 * preset at batch 1 took 211 s under emulation on a 2-core machine.
 */
class DeviceTimerTest {

  @Test
  void gemmSettingsDefaults() {
    DeviceGemmTimer.Settings settings = DeviceGemmTimer.Settings.parse();
    assertEquals("cuda:0", settings.device());
    assertEquals(4096, settings.size());
    assertEquals(10, settings.repeats());
  }

  @Test
  void gemmSettingsExplicitValues() {
    DeviceGemmTimer.Settings settings = DeviceGemmTimer.Settings.parse("emulated", "96", "3");
    assertEquals("emulated", settings.device());
    assertEquals(96, settings.size());
    assertEquals(3, settings.repeats());
  }

  @Test
  void gemmSettingsRejectInvalidValues() {
    IllegalArgumentException zero =
        assertThrows(
            IllegalArgumentException.class, () -> DeviceGemmTimer.Settings.parse("cuda:0", "0"));
    assertTrue(zero.getMessage().contains("invalid size '0'"), zero.getMessage());
    IllegalArgumentException text =
        assertThrows(
            IllegalArgumentException.class,
            () -> DeviceGemmTimer.Settings.parse("cuda:0", "64", "many"));
    assertTrue(text.getMessage().contains("invalid repeats 'many'"), text.getMessage());
    IllegalArgumentException huge =
        assertThrows(
            IllegalArgumentException.class,
            () -> DeviceGemmTimer.Settings.parse("cuda:0", "50000"));
    assertTrue(huge.getMessage().contains("too large"), huge.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> DeviceGemmTimer.Settings.parse("cuda:0", "64", "3", "extra"));
  }

  @Test
  void ratioFormatting() {
    assertEquals("0.500", DeviceGemmTimer.formatRatio(1000, 2000));
    assertEquals("1.333", DeviceGemmTimer.formatRatio(4000, 3000));
    assertEquals("unmeasured", DeviceGemmTimer.formatRatio(1000, Double.NaN));
    assertEquals("unmeasured", DeviceGemmTimer.formatRatio(1000, 0));
    assertEquals("unmeasured", DeviceGemmTimer.formatRatio(0, 1000));
    assertEquals("unmeasured", DeviceGemmTimer.formatRatio(Double.POSITIVE_INFINITY, 1000));
  }

  @Test
  void medianAndRate() {
    assertEquals(2.0, DeviceGemmTimer.median(new double[] {3, 1, 2}));
    assertEquals(2.5, DeviceGemmTimer.median(new double[] {4, 1, 3, 2}));
    // 2 * 4096^3 flop in 10 ms is 13744 GFLOP/s.
    assertEquals(13743.9, DeviceGemmTimer.gflops(2.0 * 4096 * 4096 * 4096, 10), 0.1);
  }

  @Test
  void gemmTimerRejectsCpuAndInvalidDevice() {
    Output cpu = gemm("cpu", "8", "1");
    assertEquals(2, cpu.status());
    assertTrue(cpu.err().contains("the cpu has no device GEMM kernels"), cpu.err());
    Output invalid = gemm("tpu:0");
    assertEquals(2, invalid.status());
    assertTrue(invalid.err().startsWith("DeviceGemmTimer: "), invalid.err());
  }

  @Test
  void gemmTimerOnEmulatedReportsMissingCublas() {
    Output run = gemm("emulated", "32", "2");
    assertEquals(0, run.status(), run.err());
    Map<String, String> values = keyValues(run.out());
    assertEquals("emulated", values.get("device"));
    assertEquals("132", values.get("multiprocessors"));
    assertEquals("32", values.get("size"));
    assertEquals("2", values.get("repeats"));
    for (String kernel : new String[] {"kiln_tiled128", "kiln_tiled"}) {
      assertTrue(Double.parseDouble(values.get(kernel + "_median_ms")) > 0, run.out());
      assertTrue(Double.parseDouble(values.get(kernel + "_gflops")) > 0, run.out());
    }
    assertTrue(values.get("cublas_unavailable").contains("no cuBLAS"), run.out());
    assertEquals("unmeasured", values.get("kiln_over_cublas"));
    assertEquals("unmeasured", values.get("kiln_tiled_over_cublas"));
  }

  @Test
  void gemmBenchmarkNamesEachKernel() {
    assertEquals(DeviceMatmul.Kernel.TILED_128, DeviceGemmBenchmark.ownKernel("tiled128"));
    assertEquals(DeviceMatmul.Kernel.TILED, DeviceGemmBenchmark.ownKernel("tiled"));
    assertNull(DeviceGemmBenchmark.ownKernel("cublas"));
    IllegalArgumentException unknown =
        assertThrows(IllegalArgumentException.class, () -> DeviceGemmBenchmark.ownKernel("kiln"));
    assertTrue(unknown.getMessage().contains("tiled128, tiled or cublas"), unknown.getMessage());
  }

  @Test
  void layerSettingsParse() {
    DeviceLayerTimer.Settings defaults = DeviceLayerTimer.Settings.parse();
    assertEquals(new DeviceLayerTimer.Settings("cuda:0", "lenet-20m", 64, 3, 10), defaults);
    DeviceLayerTimer.Settings explicit =
        DeviceLayerTimer.Settings.parse("--device", "emulated", "default", "2", "0", "1");
    assertEquals(new DeviceLayerTimer.Settings("emulated", "default", 2, 0, 1), explicit);
    IllegalArgumentException unknown =
        assertThrows(IllegalArgumentException.class, () -> DeviceLayerTimer.Settings.parse("vgg"));
    assertTrue(unknown.getMessage().contains("unknown preset 'vgg'"), unknown.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> DeviceLayerTimer.Settings.parse("lenet-20m", "0"));
    assertThrows(IllegalArgumentException.class, () -> DeviceLayerTimer.Settings.parse("--device"));
  }

  @Test
  void layerCasesAreVendorLayersInOrder() {
    List<String> names = DeviceLayerTimer.cases("lenet-20m").stream().map(LayerCase::name).toList();
    assertEquals(
        List.of(
            "lenet-20m/0-conv",
            "lenet-20m/2-maxpool",
            "lenet-20m/3-conv",
            "lenet-20m/5-maxpool",
            "lenet-20m/6-conv",
            "lenet-20m/8-maxpool",
            "lenet-20m/9-conv",
            "lenet-20m/11-maxpool",
            "lenet-20m/13-linear",
            "lenet-20m/15-dropout",
            "lenet-20m/16-linear",
            "lenet-20m/18-dropout",
            "lenet-20m/19-linear"),
        names);
    List<String> kinds =
        DeviceLayerTimer.cases("default").stream().map(LayerCase::kind).distinct().toList();
    assertEquals(List.of("conv", "batchnorm", "maxpool", "dropout", "linear"), kinds);
  }

  @Test
  void layerTimerRejectsCpu() {
    Output cpu = layers("--device", "cpu");
    assertEquals(2, cpu.status());
    assertTrue(cpu.err().contains("the cpu has no vendor libraries"), cpu.err());
  }

  private record Output(int status, String out, String err) {}

  private static Output gemm(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        DeviceGemmTimer.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Output(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static Output layers(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        DeviceLayerTimer.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Output(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  private static Map<String, String> keyValues(String text) {
    return text.lines()
        .filter(line -> line.contains("="))
        .collect(
            Collectors.toMap(
                line -> line.substring(0, line.indexOf('=')),
                line -> line.substring(line.indexOf('=') + 1)));
  }
}
