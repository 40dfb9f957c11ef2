package dev.kiln.core.backend.cuda.libraries;

import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.check;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.pointer;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.scalar;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.CudnnDirectConvolution.Direction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import jcuda.Pointer;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;

/**
 * The convolution calls of {@link JcudnnDnn}, with the same algorithm choice and caching as {@link
 * CudnnDirectConvolution}.
 */
final class JcudnnConvolution {

  private record Key(Direction direction, Conv2dGeometry geometry) {}

  private final cudnnHandle handle;
  private final VendorDevice device;
  private final Map<Key, AlgorithmPerf> chosen = new ConcurrentHashMap<>();

  JcudnnConvolution(cudnnHandle handle, VendorDevice device) {
    this.handle = handle;
    this.device = device;
  }

  /** The descriptors that every direction takes. */
  private record Operands(
      cudnnTensorDescriptor input,
      cudnnFilterDescriptor filter,
      cudnnConvolutionDescriptor convolution,
      cudnnTensorDescriptor output) {}

  private static Operands operands(JcudnnScope scope, Conv2dGeometry g) {
    return new Operands(
        scope.tensor(CudnnShapes.convolutionInput(g)),
        scope.filter(CudnnShapes.convolutionFilter(g)),
        scope.convolution(g),
        scope.tensor(CudnnShapes.convolutionOutput(g)));
  }

  void forward(Conv2dGeometry g, long x, long w, long y) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      Operands o = operands(scope, g);
      AlgorithmPerf algorithm =
          choose(
              Direction.FORWARD,
              g,
              cudnnConvolutionFwdAlgoPerf[]::new,
              cudnnConvolutionFwdAlgoPerf::new,
              r -> new AlgorithmPerf(r.algo, r.status, r.time, r.memory, r.mathType),
              (requested, count, results) ->
                  JCudnn.cudnnGetConvolutionForwardAlgorithm_v7(
                      handle,
                      o.input,
                      o.filter,
                      o.convolution,
                      o.output,
                      requested,
                      count,
                      results),
              (algo, bytes) ->
                  JCudnn.cudnnGetConvolutionForwardWorkspaceSize(
                      handle, o.input, o.filter, o.convolution, o.output, algo, bytes));
      run(
          algorithm,
          "cudnnConvolutionForward",
          g,
          workspace ->
              JCudnn.cudnnConvolutionForward(
                  handle,
                  scalar(1f),
                  o.input,
                  pointer(x),
                  o.filter,
                  pointer(w),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  scalar(0f),
                  o.output,
                  pointer(y)));
    }
  }

  void backwardData(Conv2dGeometry g, long w, long dy, long dx, boolean accumulate) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      Operands o = operands(scope, g);
      AlgorithmPerf algorithm =
          choose(
              Direction.BACKWARD_DATA,
              g,
              cudnnConvolutionBwdDataAlgoPerf[]::new,
              cudnnConvolutionBwdDataAlgoPerf::new,
              r -> new AlgorithmPerf(r.algo, r.status, r.time, r.memory, r.mathType),
              (requested, count, results) ->
                  JCudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(
                      handle,
                      o.filter,
                      o.output,
                      o.convolution,
                      o.input,
                      requested,
                      count,
                      results),
              (algo, bytes) ->
                  JCudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(
                      handle, o.filter, o.output, o.convolution, o.input, algo, bytes));
      run(
          algorithm,
          "cudnnConvolutionBackwardData",
          g,
          workspace ->
              JCudnn.cudnnConvolutionBackwardData(
                  handle,
                  scalar(1f),
                  o.filter,
                  pointer(w),
                  o.output,
                  pointer(dy),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  scalar(accumulate ? 1f : 0f),
                  o.input,
                  pointer(dx)));
    }
  }

  void backwardFilter(Conv2dGeometry g, long x, long dy, long dw, boolean accumulate) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      Operands o = operands(scope, g);
      AlgorithmPerf algorithm =
          choose(
              Direction.BACKWARD_FILTER,
              g,
              cudnnConvolutionBwdFilterAlgoPerf[]::new,
              cudnnConvolutionBwdFilterAlgoPerf::new,
              r -> new AlgorithmPerf(r.algo, r.status, r.time, r.memory, r.mathType),
              (requested, count, results) ->
                  JCudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                      handle,
                      o.input,
                      o.output,
                      o.convolution,
                      o.filter,
                      requested,
                      count,
                      results),
              (algo, bytes) ->
                  JCudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
                      handle, o.input, o.output, o.convolution, o.filter, algo, bytes));
      run(
          algorithm,
          "cudnnConvolutionBackwardFilter",
          g,
          workspace ->
              JCudnn.cudnnConvolutionBackwardFilter(
                  handle,
                  scalar(1f),
                  o.input,
                  pointer(x),
                  o.output,
                  pointer(dy),
                  o.convolution,
                  algorithm.algorithm(),
                  workspace,
                  algorithm.workspaceBytes(),
                  scalar(accumulate ? 1f : 0f),
                  o.filter,
                  pointer(dw)));
    }
  }

  void backwardBias(Conv2dGeometry g, long dy, long db, boolean accumulate) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      check(
          JCudnn.cudnnConvolutionBackwardBias(
              handle,
              scalar(1f),
              scope.tensor(CudnnShapes.convolutionOutput(g)),
              pointer(dy),
              scalar(accumulate ? 1f : 0f),
              scope.tensor(CudnnShapes.convolutionBias(g)),
              pointer(db)),
          "cudnnConvolutionBackwardBias",
          g.toString());
    }
  }

  /** A {@code cudnnGetConvolution*Algorithm_v7} call that fills {@code results}. */
  private interface RankCall<P> {
    int rank(int requested, int[] count, P[] results);
  }

  /** A {@code cudnnGetConvolution*WorkspaceSize} call for one algorithm. */
  private interface WorkspaceSizeCall {
    int size(int algorithm, long[] bytes);
  }

  /**
   * Returns the cached choice for this shape and direction, choosing on the first call. That call
   * ranks with {@code rank}, chooses with {@link AlgorithmChoice} and replaces the heuristic's
   * workspace estimate with the exact size. JCudnn has one perf class per direction, so the caller
   * passes how to create and read its entries.
   */
  private <P> AlgorithmPerf choose(
      Direction direction,
      Conv2dGeometry g,
      IntFunction<P[]> newArray,
      Supplier<P> newEntry,
      Function<P, AlgorithmPerf> read,
      RankCall<P> rank,
      WorkspaceSizeCall workspaceSize) {
    return chosen.computeIfAbsent(
        new Key(direction, g),
        key -> {
          P[] results = newArray.apply(CudnnDirectConvolution.MAX_ALGORITHMS);
          Arrays.setAll(results, i -> newEntry.get());
          int[] count = new int[1];
          check(
              rank.rank(results.length, count, results),
              CudnnDirectConvolution.functionName(direction, "Algorithm_v7"),
              g.toString());
          List<AlgorithmPerf> list = new ArrayList<>();
          for (int i = 0; i < count[0]; i++) {
            list.add(read.apply(results[i]));
          }
          AlgorithmPerf choice =
              AlgorithmChoice.choose(
                  direction.text,
                  list,
                  AlgorithmChoice.Ranking.HEURISTIC,
                  AlgorithmChoice.workspaceLimitBytes());
          long[] bytes = new long[1];
          check(
              workspaceSize.size(choice.algorithm(), bytes),
              CudnnDirectConvolution.functionName(direction, "WorkspaceSize"),
              g.toString());
          return new AlgorithmPerf(
              choice.algorithm(),
              choice.status(),
              choice.timeMillis(),
              bytes[0],
              choice.mathType());
        });
  }

  /** Runs a call with a workspace from kiln's allocator, returned once the call is enqueued. */
  private void run(
      AlgorithmPerf algorithm, String call, Conv2dGeometry g, Function<Pointer, Integer> body) {
    DeviceBuffer workspace = device.workspace(algorithm.workspaceBytes());
    try {
      Pointer pointer = workspace == null ? new Pointer() : pointer(workspace.address());
      check(body.apply(pointer), call, CudnnDirectConvolution.workspaceArguments(algorithm, g));
    } finally {
      device.release(workspace);
    }
  }
}
