package dev.kiln.core.backend.cuda.libraries;

import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.check;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.pointer;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.scalar;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
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

  private record Key(String direction, Conv2dGeometry geometry) {}

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
          chosen.computeIfAbsent(
              new Key("forward", g),
              key -> {
                cudnnConvolutionFwdAlgoPerf[] results = new cudnnConvolutionFwdAlgoPerf[16];
                for (int i = 0; i < results.length; i++) {
                  results[i] = new cudnnConvolutionFwdAlgoPerf();
                }
                int[] count = new int[1];
                check(
                    JCudnn.cudnnGetConvolutionForwardAlgorithm_v7(
                        handle,
                        o.input,
                        o.filter,
                        o.convolution,
                        o.output,
                        results.length,
                        count,
                        results),
                    "cudnnGetConvolutionForwardAlgorithm_v7",
                    g.toString());
                List<AlgorithmPerf> list = new ArrayList<>();
                for (int i = 0; i < count[0]; i++) {
                  list.add(
                      new AlgorithmPerf(
                          results[i].algo, results[i].status, results[i].time, results[i].memory));
                }
                return exact(
                    "convolution forward",
                    list,
                    algo -> {
                      long[] bytes = new long[1];
                      check(
                          JCudnn.cudnnGetConvolutionForwardWorkspaceSize(
                              handle, o.input, o.filter, o.convolution, o.output, algo, bytes),
                          "cudnnGetConvolutionForwardWorkspaceSize",
                          g.toString());
                      return bytes[0];
                    });
              });
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
          chosen.computeIfAbsent(
              new Key("backward data", g),
              key -> {
                cudnnConvolutionBwdDataAlgoPerf[] results = new cudnnConvolutionBwdDataAlgoPerf[16];
                for (int i = 0; i < results.length; i++) {
                  results[i] = new cudnnConvolutionBwdDataAlgoPerf();
                }
                int[] count = new int[1];
                check(
                    JCudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(
                        handle,
                        o.filter,
                        o.output,
                        o.convolution,
                        o.input,
                        results.length,
                        count,
                        results),
                    "cudnnGetConvolutionBackwardDataAlgorithm_v7",
                    g.toString());
                List<AlgorithmPerf> list = new ArrayList<>();
                for (int i = 0; i < count[0]; i++) {
                  list.add(
                      new AlgorithmPerf(
                          results[i].algo, results[i].status, results[i].time, results[i].memory));
                }
                return exact(
                    "convolution backward data",
                    list,
                    algo -> {
                      long[] bytes = new long[1];
                      check(
                          JCudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(
                              handle, o.filter, o.output, o.convolution, o.input, algo, bytes),
                          "cudnnGetConvolutionBackwardDataWorkspaceSize",
                          g.toString());
                      return bytes[0];
                    });
              });
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
          chosen.computeIfAbsent(
              new Key("backward filter", g),
              key -> {
                cudnnConvolutionBwdFilterAlgoPerf[] results =
                    new cudnnConvolutionBwdFilterAlgoPerf[16];
                for (int i = 0; i < results.length; i++) {
                  results[i] = new cudnnConvolutionBwdFilterAlgoPerf();
                }
                int[] count = new int[1];
                check(
                    JCudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                        handle,
                        o.input,
                        o.output,
                        o.convolution,
                        o.filter,
                        results.length,
                        count,
                        results),
                    "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
                    g.toString());
                List<AlgorithmPerf> list = new ArrayList<>();
                for (int i = 0; i < count[0]; i++) {
                  list.add(
                      new AlgorithmPerf(
                          results[i].algo, results[i].status, results[i].time, results[i].memory));
                }
                return exact(
                    "convolution backward filter",
                    list,
                    algo -> {
                      long[] bytes = new long[1];
                      check(
                          JCudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
                              handle, o.input, o.output, o.convolution, o.filter, algo, bytes),
                          "cudnnGetConvolutionBackwardFilterWorkspaceSize",
                          g.toString());
                      return bytes[0];
                    });
              });
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

  /** A workspace-size query for one algorithm. */
  private interface WorkspaceSize {
    long of(int algorithm);
  }

  /** Chooses from the list and replaces the heuristic's workspace estimate by the exact size. */
  private static AlgorithmPerf exact(
      String operation, List<AlgorithmPerf> list, WorkspaceSize workspaceSize) {
    AlgorithmPerf choice =
        AlgorithmChoice.choose(operation, list, AlgorithmChoice.workspaceLimitBytes());
    return new AlgorithmPerf(
        choice.algorithm(),
        choice.status(),
        choice.timeMillis(),
        workspaceSize.of(choice.algorithm()));
  }

  /** Runs a call with a workspace from kiln's allocator, returned once the call is enqueued. */
  private void run(
      AlgorithmPerf algorithm,
      String call,
      Conv2dGeometry g,
      java.util.function.Function<Pointer, Integer> body) {
    DeviceBuffer workspace = device.workspace(algorithm.workspaceBytes());
    try {
      Pointer pointer = workspace == null ? new Pointer() : pointer(workspace.address());
      check(
          body.apply(pointer),
          call,
          "algo="
              + algorithm.algorithm()
              + ", workspace="
              + algorithm.workspaceBytes()
              + " bytes, "
              + g);
    } finally {
      device.release(workspace);
    }
  }
}
