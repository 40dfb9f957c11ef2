package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The four convolution calls of {@link CudnnDirect}: forward, backward data, backward filter and
 * backward bias.
 *
 * <p>For each shape and direction, the first call requests cuDNN's ranked algorithm list ({@code
 * cudnnGetConvolution*Algorithm_v7}), chooses with {@link AlgorithmChoice}, requests the exact
 * workspace size ({@code cudnnGetConvolution*WorkspaceSize}) and caches both. Each call then draws
 * its workspace from kiln's allocator and returns it when the call is enqueued.
 *
 * <p>NOTE: the {@code _v7} functions rank by heuristics without running anything. The measured
 * search ({@code cudnnFindConvolution*AlgorithmEx}) can find faster algorithms, but it runs every
 * algorithm on the real buffers, so it would need scratch copies of outputs that accumulate.
 */
final class CudnnDirectConvolution {

  /**
   * Layout of {@code cudnnConvolutionFwdAlgoPerf_t} and its two backward twins, which have the same
   * fields, on 64-bit Linux. The enums are C ints, and {@code memory} is a {@code size_t}, so the
   * struct pads 4 bytes before it and 4 at the end, to a multiple of its 8-byte alignment.
   */
  static final StructLayout PERF_LAYOUT =
      MemoryLayout.structLayout(
          JAVA_INT.withName("algo"),
          JAVA_INT.withName("status"),
          JAVA_FLOAT.withName("time"),
          MemoryLayout.paddingLayout(4),
          JAVA_LONG.withName("memory"),
          JAVA_INT.withName("determinism"),
          JAVA_INT.withName("mathType"),
          MemoryLayout.sequenceLayout(3, JAVA_INT).withName("reserved"),
          MemoryLayout.paddingLayout(4));

  /** Size of one perf struct: 48 bytes. */
  static final int PERF_BYTES = (int) PERF_LAYOUT.byteSize();

  private static final long ALGO_OFFSET = perfOffset("algo");
  private static final long STATUS_OFFSET = perfOffset("status");
  private static final long TIME_OFFSET = perfOffset("time");
  private static final long MEMORY_OFFSET = perfOffset("memory");
  private static final long MATH_TYPE_OFFSET = perfOffset("mathType");

  /** Entries requested from the {@code _v7} functions; more than any direction has algorithms. */
  static final int MAX_ALGORITHMS = 16;

  /** A convolution direction that chooses an algorithm, with its name for messages. */
  enum Direction {
    FORWARD("convolution forward"),
    BACKWARD_DATA("convolution backward data"),
    BACKWARD_FILTER("convolution backward filter");

    final String text;

    Direction(String text) {
      this.text = text;
    }
  }

  private record Key(Direction direction, Conv2dGeometry geometry) {}

  private final CudnnDirect cudnn;
  private final CudnnFunctions functions;
  private final Map<Key, AlgorithmPerf> chosen = new ConcurrentHashMap<>();

  CudnnDirectConvolution(CudnnDirect cudnn) {
    this.cudnn = cudnn;
    this.functions = cudnn.functions();
  }

  void forward(Conv2dGeometry g, long x, long w, long y) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      Operands o = operands(d, g);
      AlgorithmPerf algorithm =
          choose(
              d,
              Direction.FORWARD,
              g,
              functions.forwardAlgorithms,
              functions.forwardWorkspaceSize,
              o.input,
              o.filter,
              o.convolution,
              o.output);
      run(
          algorithm,
          "cudnnConvolutionForward",
          g,
          workspace ->
              NativeLibrary.status(
                  functions.convolutionForward,
                  cudnn.handle(),
                  d.scalar(1f),
                  o.input,
                  pointer(x),
                  o.filter,
                  pointer(w),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  d.scalar(0f),
                  o.output,
                  pointer(y)));
    }
  }

  void backwardData(Conv2dGeometry g, long w, long dy, long dx, boolean accumulate) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      Operands o = operands(d, g);
      AlgorithmPerf algorithm =
          choose(
              d,
              Direction.BACKWARD_DATA,
              g,
              functions.backwardDataAlgorithms,
              functions.backwardDataWorkspaceSize,
              o.filter,
              o.output,
              o.convolution,
              o.input);
      run(
          algorithm,
          "cudnnConvolutionBackwardData",
          g,
          workspace ->
              NativeLibrary.status(
                  functions.convolutionBackwardData,
                  cudnn.handle(),
                  d.scalar(1f),
                  o.filter,
                  pointer(w),
                  o.output,
                  pointer(dy),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  d.scalar(accumulate ? 1f : 0f),
                  o.input,
                  pointer(dx)));
    }
  }

  void backwardFilter(Conv2dGeometry g, long x, long dy, long dw, boolean accumulate) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      Operands o = operands(d, g);
      AlgorithmPerf algorithm =
          choose(
              d,
              Direction.BACKWARD_FILTER,
              g,
              functions.backwardFilterAlgorithms,
              functions.backwardFilterWorkspaceSize,
              o.input,
              o.output,
              o.convolution,
              o.filter);
      run(
          algorithm,
          "cudnnConvolutionBackwardFilter",
          g,
          workspace ->
              NativeLibrary.status(
                  functions.convolutionBackwardFilter,
                  cudnn.handle(),
                  d.scalar(1f),
                  o.input,
                  pointer(x),
                  o.output,
                  pointer(dy),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  d.scalar(accumulate ? 1f : 0f),
                  o.filter,
                  pointer(dw)));
    }
  }

  void backwardBias(Conv2dGeometry g, long dy, long db, boolean accumulate) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment output = d.tensor(CudnnShapes.convolutionOutput(g));
      MemorySegment bias = d.tensor(CudnnShapes.convolutionBias(g));
      cudnn.check(
          NativeLibrary.status(
              functions.convolutionBackwardBias,
              cudnn.handle(),
              d.scalar(1f),
              output,
              pointer(dy),
              d.scalar(accumulate ? 1f : 0f),
              bias,
              pointer(db)),
          "cudnnConvolutionBackwardBias",
          g.toString());
    }
  }

  /** The four descriptors that every convolution direction takes. */
  private record Operands(
      MemorySegment input, MemorySegment filter, MemorySegment convolution, MemorySegment output) {}

  /**
   * Creates the descriptors and checks that cuDNN's output shape agrees with kiln's, which catches
   * a descriptor filled with the wrong numbers before any memory is touched.
   */
  private Operands operands(CudnnDescriptors d, Conv2dGeometry g) {
    MemorySegment input = d.tensor(CudnnShapes.convolutionInput(g));
    MemorySegment filter = d.filter(CudnnShapes.convolutionFilter(g));
    MemorySegment convolution = d.convolution(g);
    Nchw expected = CudnnShapes.convolutionOutput(g);
    MemorySegment dims = d.bytes(4L * Integer.BYTES);
    cudnn.check(
        NativeLibrary.status(
            functions.getConvolution2dForwardOutputDim,
            convolution,
            input,
            filter,
            dims,
            dims.asSlice(4),
            dims.asSlice(8),
            dims.asSlice(12)),
        "cudnnGetConvolution2dForwardOutputDim",
        g.toString());
    Nchw reported =
        new Nchw(
            dims.get(JAVA_INT, 0),
            dims.get(JAVA_INT, 4),
            dims.get(JAVA_INT, 8),
            dims.get(JAVA_INT, 12));
    if (!reported.equals(expected)) {
      throw new IllegalStateException(
          "cuDNN computes output shape "
              + reported
              + " for "
              + g
              + " but kiln computes "
              + expected
              + ": the descriptors do not match kiln's geometry");
    }
    return new Operands(input, filter, convolution, d.tensor(expected));
  }

  /** Returns the cached choice for this shape and direction, choosing on the first call. */
  private AlgorithmPerf choose(
      CudnnDescriptors d,
      Direction direction,
      Conv2dGeometry g,
      MethodHandle rank,
      MethodHandle workspaceSize,
      MemorySegment first,
      MemorySegment second,
      MemorySegment convolution,
      MemorySegment last) {
    Key key = new Key(direction, g);
    AlgorithmPerf cached = chosen.get(key);
    if (cached != null) {
      return cached;
    }
    MemorySegment results = d.bytes((long) MAX_ALGORITHMS * PERF_BYTES);
    MemorySegment count = d.intSlot();
    String call = functionName(direction, "Algorithm_v7");
    cudnn.check(
        NativeLibrary.status(
            rank, cudnn.handle(), first, second, convolution, last, MAX_ALGORITHMS, count, results),
        call,
        g.toString());
    List<AlgorithmPerf> list = readPerfResults(results, count.get(JAVA_INT, 0));
    AlgorithmPerf choice =
        AlgorithmChoice.choose(
            direction.text,
            list,
            AlgorithmChoice.Ranking.HEURISTIC,
            AlgorithmChoice.workspaceLimitBytes());

    // The heuristic's memory figure is an estimate, so the exact size is asked for separately.
    MemorySegment bytes = d.sizeSlot();
    cudnn.check(
        NativeLibrary.status(
            workspaceSize,
            cudnn.handle(),
            first,
            second,
            convolution,
            last,
            choice.algorithm(),
            bytes),
        functionName(direction, "WorkspaceSize"),
        "algo=" + choice.algorithm() + ", " + g);
    AlgorithmPerf exact =
        new AlgorithmPerf(
            choice.algorithm(),
            choice.status(),
            choice.timeMillis(),
            bytes.get(JAVA_LONG, 0),
            choice.mathType());
    chosen.put(key, exact);
    return exact;
  }

  /** Returns the name of the {@code cudnnGetConvolution*} function for a direction and suffix. */
  static String functionName(Direction direction, String suffix) {
    return switch (direction) {
      case FORWARD -> "cudnnGetConvolutionForward" + suffix;
      case BACKWARD_DATA -> "cudnnGetConvolutionBackwardData" + suffix;
      case BACKWARD_FILTER -> "cudnnGetConvolutionBackwardFilter" + suffix;
    };
  }

  /**
   * Reads {@code count} entries of a {@code cudnnConvolution*AlgoPerf_t} array, in cuDNN's order.
   * The {@code determinism} field is not read, because {@link AlgorithmChoice} does not use it.
   */
  static List<AlgorithmPerf> readPerfResults(MemorySegment results, int count) {
    List<AlgorithmPerf> list = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      long base = (long) i * PERF_BYTES;
      list.add(
          new AlgorithmPerf(
              results.get(JAVA_INT, base + ALGO_OFFSET),
              results.get(JAVA_INT, base + STATUS_OFFSET),
              results.get(JAVA_FLOAT, base + TIME_OFFSET),
              results.get(JAVA_LONG, base + MEMORY_OFFSET),
              results.get(JAVA_INT, base + MATH_TYPE_OFFSET)));
    }
    return list;
  }

  /** Returns the byte offset of field {@code name} in {@link #PERF_LAYOUT}. */
  private static long perfOffset(String name) {
    return PERF_LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement(name));
  }

  /** A convolution call that takes the workspace pointer. */
  private interface WorkspaceCall {
    int run(MemorySegment workspace);
  }

  /** Runs a call with a workspace from kiln's allocator, returned once the call is enqueued. */
  private void run(AlgorithmPerf algorithm, String call, Conv2dGeometry g, WorkspaceCall body) {
    DeviceBuffer workspace = cudnn.device().workspace(algorithm.workspaceBytes());
    try {
      MemorySegment pointer = workspace == null ? MemorySegment.NULL : pointer(workspace.address());
      cudnn.check(body.run(pointer), call, workspaceArguments(algorithm, g));
    } finally {
      cudnn.device().release(workspace);
    }
  }

  /** Describes a convolution call's algorithm, workspace and geometry for its error message. */
  static String workspaceArguments(AlgorithmPerf algorithm, Conv2dGeometry g) {
    return "algo="
        + algorithm.algorithm()
        + ", workspace="
        + algorithm.workspaceBytes()
        + " bytes, "
        + g;
  }

  static MemorySegment pointer(long address) {
    return MemorySegment.ofAddress(address);
  }
}
