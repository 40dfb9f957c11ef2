package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.benchmarks.GpuReport.StepComparison;
import dev.kiln.benchmarks.GpuReport.TrainingComparison;
import dev.kiln.benchmarks.GpuReport.Verdict;
import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.cuda.libraries.VendorSelection;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.train.History;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GpuReportTest {

  @Test
  void parsesCudaDeviceWithIndex() {
    Device device = GpuReport.parseCudaDevice("cuda:1");

    assertEquals(Device.Kind.CUDA, device.kind());
    assertEquals(1, device.index());
  }

  @Test
  void parsesBareCudaAsDeviceZero() {
    assertEquals(0, GpuReport.parseCudaDevice("cuda").index());
  }

  @Test
  void rejectsCpuDevice() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> GpuReport.parseCudaDevice("cpu"));

    assertTrue(error.getMessage().contains("'cpu'"), error.getMessage());
  }

  @Test
  void describesPresentResourceBySize() throws IOException {
    String resource = "dev/kiln/benchmarks/GpuReport.class";
    long size;
    try (InputStream in = GpuReport.class.getClassLoader().getResourceAsStream(resource)) {
      size = in.readAllBytes().length;
    }

    assertEquals(size + " bytes (" + resource + ")", GpuReport.describeResource(resource));
  }

  @Test
  void describesMissingResource() {
    assertEquals(
        "missing (class-path resource dev/kiln/none.bin)",
        GpuReport.describeResource("dev/kiln/none.bin"));
  }

  /**
   * The report's headline is about the GPU, so kiln's message must not advise running on the CPU.
   */
  @Test
  void unusableMessageGivesNoCpuAdvice() {
    CudaAvailability availability = CudaAvailability.check(0);
    assumeFalse(availability.usable(), "cuda:0 is usable here, so there is no advice to check");

    assertFalse(availability.message().contains("run on the CPU"), availability.message());
  }

  /** The train stage's CPU control with seed 1 on a 2-core machine, NME rounded to 4 places. */
  private static final List<EpochRecord> CPU_CONTROL =
      history(new double[] {0.263682, 0.148276, 0.119193}, new double[] {0.3909, 0.2547, 0.2410});

  @Test
  void selectionLinesKeepEveryDetail() {
    var selected =
        new VendorSelection.Selected<VendorBlas>(
            "cuBLAS",
            VendorSelection.Provider.KILN,
            null,
            "cuBLAS: using kiln's own kernels, because none loaded",
            "cuBLAS: using kiln's own kernels, because JCuda failed: A\n/x/libcublas.so.13 failed"
                + " to load: Cannot open library: /x/libcublas.so.13 (file too short)");

    List<String> lines = GpuReport.selectionLines("cublas", selected);

    assertEquals(3, lines.size(), lines.toString());
    assertEquals("cublas=cuBLAS: using kiln's own kernels, because none loaded", lines.get(0));
    assertEquals(
        "cublas.detail=cuBLAS: using kiln's own kernels, because JCuda failed: A", lines.get(1));
    assertTrue(lines.get(2).startsWith("cublas.detail=/x/libcublas.so.13 failed"), lines.get(2));
    assertTrue(lines.get(2).endsWith("(file too short)"), lines.get(2));
  }

  @Test
  void comparisonPassesWithinTolerance() {
    List<EpochRecord> gpu =
        history(new double[] {0.27, 0.15, 0.12}, new double[] {0.41, 0.29, 0.2810});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.PASS, comparison.verdict(), comparison.detail());
    assertTrue(
        comparison.detail().contains("28.10% against the CPU's 24.10%, a difference of 4.00"),
        comparison.detail());
  }

  @Test
  void comparisonFailsBeyondTolerance() {
    List<EpochRecord> gpu =
        history(new double[] {0.27, 0.15, 0.12}, new double[] {0.41, 0.35, 0.3220});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertTrue(
        comparison.detail().contains("a difference of 8.10 points, over the tolerance of 8.00"),
        comparison.detail());
  }

  @Test
  void comparisonFailsOnNanLoss() {
    List<EpochRecord> gpu =
        history(new double[] {0.27, Double.NaN, 0.12}, new double[] {0.41, 0.29, 0.25});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals("epoch 2 of the GPU run: training loss is NaN", comparison.detail());
  }

  @Test
  void comparisonFailsWhenLossRises() {
    List<EpochRecord> gpu =
        history(new double[] {0.27, 0.28, 0.29}, new double[] {0.41, 0.29, 0.25});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals(
        "the GPU run's training loss did not fall: training loss from 0.2700 to 0.2900",
        comparison.detail());
  }

  @Test
  void comparisonFailsWhenNmeRises() {
    List<EpochRecord> gpu =
        history(new double[] {0.27, 0.15, 0.12}, new double[] {0.24, 0.25, 0.26});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals(
        "the GPU run's validation NME did not fall: validation NME from 24.00% to 26.00%",
        comparison.detail());
  }

  @Test
  void comparisonFailsOnMissingEpoch() {
    List<EpochRecord> gpu = history(new double[] {0.27, 0.15}, new double[] {0.41, 0.29});

    TrainingComparison comparison = TrainingComparison.of(gpu, CPU_CONTROL, 3);

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals("the GPU run has 2 of 3 epochs in history.csv", comparison.detail());
  }

  @Test
  void comparisonUnmeasuredWithoutControl() {
    TrainingComparison comparison = TrainingComparison.of(CPU_CONTROL, List.of(), 3);

    assertEquals(Verdict.UNMEASURED, comparison.verdict());
    assertTrue(comparison.detail().startsWith("the CPU control has 0 of 3 epochs"));
  }

  @Test
  void comparisonRejectsOneEpoch() {
    assertThrows(
        IllegalArgumentException.class,
        () -> TrainingComparison.of(CPU_CONTROL.subList(0, 1), CPU_CONTROL.subList(0, 1), 1));
  }

  @Test
  void readsHistoryWrittenByTrainer(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("history.csv");
    History written = History.open(file);
    for (EpochRecord record : CPU_CONTROL) {
      written.add(record);
    }

    List<EpochRecord> read = GpuReport.readHistory(file);

    assertEquals(3, read.size());
    assertEquals(0.2410, read.getLast().validationNme(), 1e-9);
    assertEquals(0.119193, read.getLast().trainLoss(), 1e-9);
  }

  @Test
  void readsMissingHistoryAsEmpty(@TempDir Path folder) throws IOException {
    assertFalse(folder.resolve("history.csv").toFile().exists());
    assertEquals(List.of(), GpuReport.readHistory(folder.resolve("history.csv")));
  }

  /** Batch size of the step comparisons below: a rate of 100 images/s is a step of 10 ms. */
  private static final int BATCH = 1;

  /** PyTorch's rates of the step comparisons below: steps of 10, 12.5 and 20 ms. */
  private static final String PYTORCH_RATES = "100,80,50";

  @Test
  void stepsMetWhenRangesApart() {
    StepComparison comparison = StepComparison.parse(BATCH, PYTORCH_RATES, "5,6,7");

    assertEquals("met", comparison.verdict());
    assertEquals(6 / 12.5, comparison.ratio());
  }

  @Test
  void stepsNotMetWhenSlower() {
    StepComparison comparison = StepComparison.parse(BATCH, PYTORCH_RATES, "21,22,25");

    assertEquals("not met", comparison.verdict());
    assertEquals(22 / 12.5, comparison.ratio());
  }

  @Test
  void overlappingStepRangesAreTie() {
    // kiln's median, 11 ms, is below PyTorch's 12.5 ms, but its slowest step is within PyTorch's
    // range, so another draw of steps could put the medians the other way.
    StepComparison faster = StepComparison.parse(BATCH, PYTORCH_RATES, "9,11,19.5");
    StepComparison slower = StepComparison.parse(BATCH, PYTORCH_RATES, "10.5,14,30");

    assertEquals(ComparisonTable.TIE, faster.verdict());
    assertEquals(ComparisonTable.TIE, slower.verdict());
  }

  @Test
  void ratioJustAboveTargetIsNotMet() {
    StepComparison comparison = StepComparison.parse(BATCH, "100,100", "10.04,10.04");

    assertEquals(1.004, comparison.ratio(), 1e-12);
    assertEquals("not met", comparison.verdict());
  }

  @Test
  void pytorchRatesBecomeStepMillis() {
    assertArrayEquals(new double[] {100, 50}, StepComparison.pytorchStepMillis(10, "100,200.0"), 0);
    // The median of steps of 100 and 50 ms is 75 ms, not the step at the median rate (66.7 ms).
    assertEquals(75, ComparisonTable.median(StepComparison.pytorchStepMillis(10, "100,200")));
    assertEquals(
        2333.3333333333335, ComparisonTable.median(StepComparison.pytorchStepMillis(7, "3,3")));
  }

  @Test
  void stepTimesParseInFull() {
    StepComparison comparison =
        StepComparison.parse(BATCH, PYTORCH_RATES, "10.0,0.30000000000000004,1.0E-4");

    assertArrayEquals(new double[] {10, 0.1 + 0.2, 1e-4}, comparison.kilnMillis(), 0);
  }

  @Test
  void stepTimesRejectInvalidValues() {
    String[] invalid = {"", "1,,2", "1,-2", "0", "NaN", "Infinity", "1;2", "fast"};
    for (String kiln : invalid) {
      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () -> StepComparison.parse(BATCH, PYTORCH_RATES, kiln),
              "accepted '" + kiln + "'");
      assertTrue(error.getMessage().startsWith("kiln's step times (ms): "), error.getMessage());
    }
    IllegalArgumentException rate =
        assertThrows(
            IllegalArgumentException.class, () -> StepComparison.pytorchStepMillis(BATCH, "1,x"));
    assertEquals(
        "PyTorch's rates (images/s): invalid value 'x' at position 2 of '1,x'; give finite"
            + " numbers above 0, separated by commas",
        rate.getMessage());
    assertThrows(IllegalArgumentException.class, () -> StepComparison.pytorchStepMillis(0, "1"));
  }

  @Test
  void compareStepsPrintsBothSides() {
    String output = printed("compare-steps", "1", PYTORCH_RATES, "5,6,7");

    assertEquals(
        List.of(
            "pytorch_median_ms=12.5",
            "pytorch_min_ms=10.0",
            "pytorch_max_ms=20.0",
            "kiln_median_ms=6.0",
            "kiln_min_ms=5.0",
            "kiln_max_ms=7.0",
            "ratio=0.48",
            "verdict=met"),
        output.lines().toList());
  }

  @Test
  void compareStepsWithoutKilnPrintsPytorchOnly() {
    String output = printed("compare-steps", "1", PYTORCH_RATES, "");

    assertEquals(
        List.of("pytorch_median_ms=12.5", "pytorch_min_ms=10.0", "pytorch_max_ms=20.0"),
        output.lines().toList());
  }

  /** Runs {@link GpuReport#main} in this JVM and returns what it printed. */
  static String printed(String... args) {
    PrintStream original = System.out;
    ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
    try {
      GpuReport.main(args);
    } finally {
      System.setOut(original);
    }
    return buffer.toString(StandardCharsets.UTF_8);
  }

  /** Builds epochs 1, 2, ... with the given training losses and validation NMEs. */
  private static List<EpochRecord> history(double[] trainLosses, double[] nmes) {
    EpochRecord[] records = new EpochRecord[trainLosses.length];
    for (int i = 0; i < records.length; i++) {
      records[i] = new EpochRecord(i + 1, trainLosses[i], 0.1, nmes[i], 1e-3, 4, 100, 0);
    }
    return List.of(records);
  }
}
