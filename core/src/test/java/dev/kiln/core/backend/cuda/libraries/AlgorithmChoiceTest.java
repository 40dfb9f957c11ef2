package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Tests the choice of a convolution algorithm from cuDNN's (algo, status, time, workspace, math
 * type) list.
 */
class AlgorithmChoiceTest {

  private static final long MIB = 1L << 20;
  private static final int FMA = CudnnDescriptors.FMA_MATH;
  private static final int DEFAULT_MATH = 0;
  private static final int TENSOR_OP_MATH = 1;

  @AfterEach
  void clearProperty() {
    System.clearProperty(AlgorithmChoice.LIMIT_PROPERTY);
  }

  @Test
  void fastestFittingMeasuredAlgorithmWins() {
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(0, 0, 2.0f, 0, FMA),
            new AlgorithmPerf(1, 0, 0.5f, 600 * MIB, FMA),
            new AlgorithmPerf(2, 0, 0.9f, 100 * MIB, FMA),
            new AlgorithmPerf(5, 0, 1.2f, 10 * MIB, FMA));

    assertEquals(2, chooseMeasured(results, 512 * MIB).algorithm());
    assertEquals(1, chooseMeasured(results, 1024 * MIB).algorithm());
    assertEquals(0, chooseMeasured(results, 0).algorithm());
  }

  @Test
  void failedStatusIsSkippedEvenWhenFastest() {
    List<AlgorithmPerf> results =
        List.of(new AlgorithmPerf(6, 3000, 0.1f, 0, FMA), new AlgorithmPerf(1, 0, 0.7f, 0, FMA));

    assertEquals(1, chooseMeasured(results, MIB).algorithm());
  }

  @Test
  void otherMathTypeIsSkippedEvenWhenFastest() {
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(1, 0, 0.1f, 0, DEFAULT_MATH),
            new AlgorithmPerf(6, 0, 0.2f, 0, TENSOR_OP_MATH),
            new AlgorithmPerf(0, 0, 0.9f, 0, FMA));

    AlgorithmPerf chosen = chooseMeasured(results, MIB);

    assertEquals(0, chosen.algorithm());
    assertEquals(FMA, chosen.mathType());
  }

  @Test
  void heuristicListSkipsOtherMathType() {
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(7, 0, 0f, 0, TENSOR_OP_MATH), new AlgorithmPerf(1, 0, 0f, 0, FMA));

    assertEquals(1, chooseHeuristic(results, MIB).algorithm());
  }

  @Test
  void tiesGoToSmallerWorkspaceThenLowerAlgorithm() {
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(4, 0, 1.0f, 8 * MIB, FMA),
            new AlgorithmPerf(3, 0, 1.0f, 2 * MIB, FMA),
            new AlgorithmPerf(2, 0, 1.0f, 2 * MIB, FMA));

    assertEquals(2, chooseMeasured(results, 16 * MIB).algorithm());
  }

  @Test
  void heuristicListKeepsCudnnRanking() {
    // The first usable entry of a _v7 list is chosen, whatever the time field contains.
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(7, 0, -1f, 900 * MIB, FMA),
            new AlgorithmPerf(1, 0, -1f, 4 * MIB, FMA),
            new AlgorithmPerf(0, 0, -1f, 0, FMA));

    assertEquals(1, chooseHeuristic(results, 64 * MIB).algorithm());
    assertEquals(7, chooseHeuristic(results, 1024 * MIB).algorithm());
  }

  @Test
  void heuristicListWithZeroTimesKeepsCudnnRanking() {
    // Sorting these by time, then workspace, then number would pick algorithm 0.
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(5, 0, 0f, 8 * MIB, FMA),
            new AlgorithmPerf(1, 0, 0f, 2 * MIB, FMA),
            new AlgorithmPerf(0, 0, 0f, 0, FMA));

    assertEquals(5, chooseHeuristic(results, 64 * MIB).algorithm());
  }

  @Test
  void measuredListIgnoresCudnnOrder() {
    List<AlgorithmPerf> results =
        List.of(new AlgorithmPerf(5, 0, 3.0f, 0, FMA), new AlgorithmPerf(1, 0, 1.0f, 0, FMA));

    assertEquals(1, chooseMeasured(results, MIB).algorithm());
    assertEquals(5, chooseHeuristic(results, MIB).algorithm());
  }

  @Test
  void nothingFitsNamesEveryReason() {
    List<AlgorithmPerf> results =
        List.of(
            new AlgorithmPerf(1, 0, 0.5f, 64 * MIB, FMA),
            new AlgorithmPerf(2, 3002, 0.2f, 0, FMA),
            new AlgorithmPerf(4, 0, 0.1f, 0, DEFAULT_MATH));

    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                AlgorithmChoice.choose(
                    "convolution forward", results, AlgorithmChoice.Ranking.HEURISTIC, MIB));

    assertTrue(e.getMessage().contains("convolution forward"), e.getMessage());
    assertTrue(e.getMessage().contains("algorithm 1 needs 67108864 bytes"), e.getMessage());
    assertTrue(e.getMessage().contains("algorithm 2 has status 3002"), e.getMessage());
    assertTrue(
        e.getMessage().contains("algorithm 4 is listed with math type 0, not CUDNN_FMA_MATH (3)"),
        e.getMessage());
    assertTrue(e.getMessage().contains(AlgorithmChoice.LIMIT_PROPERTY), e.getMessage());
  }

  @Test
  void emptyListIsReported() {
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> chooseMeasured(List.of(), MIB));

    assertTrue(e.getMessage().contains("cuDNN returned no algorithms"), e.getMessage());
  }

  @Test
  void workspaceLimitFromProperty() {
    assertEquals(AlgorithmChoice.DEFAULT_LIMIT_MIB * MIB, AlgorithmChoice.workspaceLimitBytes());

    System.setProperty(AlgorithmChoice.LIMIT_PROPERTY, " 256 ");
    assertEquals(256 * MIB, AlgorithmChoice.workspaceLimitBytes());

    System.setProperty(AlgorithmChoice.LIMIT_PROPERTY, "-1");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, AlgorithmChoice::workspaceLimitBytes);
    assertTrue(e.getMessage().contains("=-1 is invalid"), e.getMessage());
  }

  @Test
  void perfStructHasCudnnSize() {
    // sizeof(cudnnConvolutionFwdAlgoPerf_t) on 64-bit Linux, with 4 bytes of padding after the
    // float time and 4 after reserved[3].
    assertEquals(48, CudnnDirectConvolution.PERF_BYTES);
    assertEquals(8, CudnnDirectConvolution.PERF_LAYOUT.byteAlignment());
  }

  @Test
  void readsPerfStructArray() {
    // Two cudnnConvolutionFwdAlgoPerf_t entries written at the offsets of the C struct.
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment results = arena.allocate(2L * CudnnDirectConvolution.PERF_BYTES, 8);
      writePerf(results, 0, 1, 0, 0.25f, 4096, FMA);
      writePerf(results, 1, 6, 3000, -1f, 1L << 33, TENSOR_OP_MATH);

      List<AlgorithmPerf> list = CudnnDirectConvolution.readPerfResults(results, 2);

      assertEquals(new AlgorithmPerf(1, 0, 0.25f, 4096, FMA), list.get(0));
      assertEquals(new AlgorithmPerf(6, 3000, -1f, 1L << 33, TENSOR_OP_MATH), list.get(1));
    }
  }

  @Test
  void sharedConvolutionNamesAndMessage() {
    // JcudnnConvolution reuses these for its messages, so they must keep cuDNN's function names.
    CudnnDirectConvolution.Direction forward = CudnnDirectConvolution.Direction.FORWARD;
    CudnnDirectConvolution.Direction data = CudnnDirectConvolution.Direction.BACKWARD_DATA;
    CudnnDirectConvolution.Direction filter = CudnnDirectConvolution.Direction.BACKWARD_FILTER;
    assertEquals(
        "cudnnGetConvolutionForwardAlgorithm_v7",
        CudnnDirectConvolution.functionName(forward, "Algorithm_v7"));
    assertEquals(
        "cudnnGetConvolutionBackwardDataWorkspaceSize",
        CudnnDirectConvolution.functionName(data, "WorkspaceSize"));
    assertEquals(
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
        CudnnDirectConvolution.functionName(filter, "Algorithm_v7"));
    assertEquals("convolution forward", forward.text);
    assertEquals("convolution backward data", data.text);
    assertEquals("convolution backward filter", filter.text);

    Conv2dGeometry g = new Conv2dGeometry(2, 3, 9, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1);
    assertEquals(
        "algo=6, workspace=4096 bytes, " + g,
        CudnnDirectConvolution.workspaceArguments(new AlgorithmPerf(6, 0, -1f, 4096, FMA), g));
  }

  private static AlgorithmPerf chooseMeasured(List<AlgorithmPerf> results, long limitBytes) {
    return AlgorithmChoice.choose("forward", results, AlgorithmChoice.Ranking.MEASURED, limitBytes);
  }

  private static AlgorithmPerf chooseHeuristic(List<AlgorithmPerf> results, long limitBytes) {
    return AlgorithmChoice.choose(
        "forward", results, AlgorithmChoice.Ranking.HEURISTIC, limitBytes);
  }

  private static void writePerf(
      MemorySegment results,
      int index,
      int algo,
      int status,
      float time,
      long memory,
      int mathType) {
    long base = (long) index * CudnnDirectConvolution.PERF_BYTES;
    results.set(JAVA_INT, base, algo);
    results.set(JAVA_INT, base + 4, status);
    results.set(JAVA_FLOAT, base + 8, time);
    results.set(JAVA_LONG, base + 16, memory);
    // determinism is written but not read, because the choice ignores it.
    results.set(JAVA_INT, base + 24, 1);
    results.set(JAVA_INT, base + 28, mathType);
  }
}
