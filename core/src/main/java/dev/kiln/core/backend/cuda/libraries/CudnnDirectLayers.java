package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * Pooling, batch norm, dropout and activation calls of {@link CudnnDirect}.
 *
 * <p>Dropout is the one layer with state that outlives a call. Its descriptor contains the random
 * number generator's states in device memory ({@code cudnnDropoutGetStatesSize} bytes), which
 * {@code cudnnSetDropoutDescriptor} initializes from the seed, a slow step. So one descriptor is
 * kept per probability and seed, and its states come from kiln's allocator until {@link #close()}.
 */
final class CudnnDirectLayers implements AutoCloseable {

  /** {@code CUDNN_BATCHNORM_SPATIAL}: one mean and variance per channel, over N, H and W. */
  static final int BATCHNORM_SPATIAL = 1;

  private record DropoutKey(float probability, long seed) {}

  private record DropoutState(MemorySegment descriptor, DeviceBuffer states) {}

  private final CudnnDirect cudnn;
  private final CudnnFunctions functions;
  private final Map<DropoutKey, DropoutState> dropouts = new HashMap<>();

  CudnnDirectLayers(CudnnDirect cudnn) {
    this.cudnn = cudnn;
    this.functions = cudnn.functions();
  }

  void poolingForward(VendorDnn.PoolingMode mode, Pool2dGeometry g, long x, long y) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      cudnn.check(
          NativeLibrary.status(
              functions.poolingForward,
              cudnn.handle(),
              d.pooling(mode, g),
              d.scalar(1f),
              d.tensor(CudnnShapes.poolingInput(g)),
              pointer(x),
              d.scalar(0f),
              d.tensor(CudnnShapes.poolingOutput(g)),
              pointer(y)),
          "cudnnPoolingForward",
          mode + ", " + g);
    }
  }

  void poolingBackward(
      VendorDnn.PoolingMode mode, Pool2dGeometry g, long x, long y, long dy, long dx) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment input = d.tensor(CudnnShapes.poolingInput(g));
      MemorySegment output = d.tensor(CudnnShapes.poolingOutput(g));
      cudnn.check(
          NativeLibrary.status(
              functions.poolingBackward,
              cudnn.handle(),
              d.pooling(mode, g),
              d.scalar(1f),
              output,
              pointer(y),
              output,
              pointer(dy),
              input,
              pointer(x),
              d.scalar(0f),
              input,
              pointer(dx)),
          "cudnnPoolingBackward",
          mode + ", " + g);
    }
  }

  void batchNormForwardTraining(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      double momentum,
      double epsilon,
      long runningMean,
      long runningVariance,
      long saveMean,
      long saveInvStd) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(shape);
      MemorySegment parameters = batchNormParameters(d, tensor, shape);
      cudnn.check(
          NativeLibrary.status(
              functions.batchNormForwardTraining,
              cudnn.handle(),
              BATCHNORM_SPATIAL,
              d.scalar(1f),
              d.scalar(0f),
              tensor,
              pointer(x),
              tensor,
              pointer(y),
              parameters,
              pointer(scale),
              pointer(bias),
              momentum,
              pointer(runningMean),
              pointer(runningVariance),
              epsilon,
              pointer(saveMean),
              pointer(saveInvStd)),
          "cudnnBatchNormalizationForwardTraining",
          "shape=" + shape + ", momentum=" + momentum + ", epsilon=" + epsilon);
    }
  }

  void batchNormForwardInference(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      long runningMean,
      long runningVariance,
      double epsilon) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(shape);
      MemorySegment parameters = batchNormParameters(d, tensor, shape);
      cudnn.check(
          NativeLibrary.status(
              functions.batchNormForwardInference,
              cudnn.handle(),
              BATCHNORM_SPATIAL,
              d.scalar(1f),
              d.scalar(0f),
              tensor,
              pointer(x),
              tensor,
              pointer(y),
              parameters,
              pointer(scale),
              pointer(bias),
              pointer(runningMean),
              pointer(runningVariance),
              epsilon),
          "cudnnBatchNormalizationForwardInference",
          "shape=" + shape + ", epsilon=" + epsilon);
    }
  }

  void batchNormBackward(
      Nchw shape,
      long x,
      long dy,
      long dx,
      long scale,
      long dScale,
      long dBias,
      double epsilon,
      long saveMean,
      long saveInvStd) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(shape);
      MemorySegment parameters = batchNormParameters(d, tensor, shape);
      MemorySegment alpha = d.scalar(1f);
      MemorySegment beta = d.scalar(0f);
      cudnn.check(
          NativeLibrary.status(
              functions.batchNormBackward,
              cudnn.handle(),
              BATCHNORM_SPATIAL,
              alpha,
              beta,
              alpha,
              beta,
              tensor,
              pointer(x),
              tensor,
              pointer(dy),
              tensor,
              pointer(dx),
              parameters,
              pointer(scale),
              pointer(dScale),
              pointer(dBias),
              epsilon,
              pointer(saveMean),
              pointer(saveInvStd)),
          "cudnnBatchNormalizationBackward",
          "shape=" + shape + ", epsilon=" + epsilon);
    }
  }

  /** Derives the [1, C, 1, 1] descriptor of the per-channel parameters and checks its shape. */
  private MemorySegment batchNormParameters(CudnnDescriptors d, MemorySegment input, Nchw shape) {
    MemorySegment parameters = d.emptyTensor();
    cudnn.check(
        NativeLibrary.status(functions.deriveBatchNormTensor, parameters, input, BATCHNORM_SPATIAL),
        "cudnnDeriveBNTensorDescriptor",
        "shape="
            + shape
            + ", mode=CUDNN_BATCHNORM_SPATIAL, parameters="
            + CudnnShapes.batchNormParameters(shape));
    return parameters;
  }

  long dropoutReserveBytes(int elements) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment bytes = d.sizeSlot();
      cudnn.check(
          NativeLibrary.status(
              functions.dropoutGetReserveSpaceSize, d.tensor(Nchw.flat(elements)), bytes),
          "cudnnDropoutGetReserveSpaceSize",
          "elements=" + elements);
      return bytes.get(JAVA_LONG, 0);
    }
  }

  void dropoutForward(
      float probability, long seed, int elements, long x, long y, long reserve, long reserveBytes) {
    cudnn.device().makeCurrent().run();
    MemorySegment dropout = dropout(probability, seed);
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(Nchw.flat(elements));
      cudnn.check(
          NativeLibrary.status(
              functions.dropoutForward,
              cudnn.handle(),
              dropout,
              tensor,
              pointer(x),
              tensor,
              pointer(y),
              pointer(reserve),
              reserveBytes),
          "cudnnDropoutForward",
          "probability=" + probability + ", elements=" + elements);
    }
  }

  void dropoutBackward(
      float probability,
      long seed,
      int elements,
      long dy,
      long dx,
      long reserve,
      long reserveBytes) {
    cudnn.device().makeCurrent().run();
    MemorySegment dropout = dropout(probability, seed);
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(Nchw.flat(elements));
      cudnn.check(
          NativeLibrary.status(
              functions.dropoutBackward,
              cudnn.handle(),
              dropout,
              tensor,
              pointer(dy),
              tensor,
              pointer(dx),
              pointer(reserve),
              reserveBytes),
          "cudnnDropoutBackward",
          "probability=" + probability + ", elements=" + elements);
    }
  }

  /** Returns the dropout descriptor of this probability and seed, creating it on first use. */
  private MemorySegment dropout(float probability, long seed) {
    DropoutKey key = new DropoutKey(probability, seed);
    DropoutState state = dropouts.get(key);
    if (state != null) {
      return state.descriptor();
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment slot = arena.allocate(ADDRESS);
      cudnn.check(
          NativeLibrary.status(functions.createDropout, slot), "cudnnCreateDropoutDescriptor", "");
      MemorySegment descriptor = slot.get(ADDRESS, 0);
      MemorySegment bytes = arena.allocate(JAVA_LONG);
      DeviceBuffer states = null;
      try {
        cudnn.check(
            NativeLibrary.status(functions.dropoutGetStatesSize, cudnn.handle(), bytes),
            "cudnnDropoutGetStatesSize",
            "");
        long stateBytes = bytes.get(JAVA_LONG, 0);
        states = cudnn.device().workspace(stateBytes);
        cudnn.check(
            NativeLibrary.status(
                functions.setDropout,
                descriptor,
                cudnn.handle(),
                probability,
                states == null ? MemorySegment.NULL : pointer(states.address()),
                stateBytes,
                seed),
            "cudnnSetDropoutDescriptor",
            "probability=" + probability + ", seed=" + seed + ", states=" + stateBytes + " bytes");
      } catch (RuntimeException e) {
        NativeLibrary.status(functions.destroyDropout, descriptor);
        cudnn.device().release(states);
        throw e;
      }
      dropouts.put(key, new DropoutState(descriptor, states));
      return descriptor;
    }
  }

  void activationForward(VendorDnn.ActivationMode mode, int elements, long x, long y) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(Nchw.flat(elements));
      cudnn.check(
          NativeLibrary.status(
              functions.activationForward,
              cudnn.handle(),
              d.activation(mode),
              d.scalar(1f),
              tensor,
              pointer(x),
              d.scalar(0f),
              tensor,
              pointer(y)),
          "cudnnActivationForward",
          mode + ", elements=" + elements);
    }
  }

  void activationBackward(
      VendorDnn.ActivationMode mode, int elements, long y, long dy, long x, long dx) {
    cudnn.device().makeCurrent().run();
    try (CudnnDescriptors d = cudnn.descriptors()) {
      MemorySegment tensor = d.tensor(Nchw.flat(elements));
      cudnn.check(
          NativeLibrary.status(
              functions.activationBackward,
              cudnn.handle(),
              d.activation(mode),
              d.scalar(1f),
              tensor,
              pointer(y),
              tensor,
              pointer(dy),
              tensor,
              pointer(x),
              d.scalar(0f),
              tensor,
              pointer(dx)),
          "cudnnActivationBackward",
          mode + ", elements=" + elements);
    }
  }

  /** Destroys the dropout descriptors and returns their states to the allocator. */
  @Override
  public void close() {
    for (DropoutState state : dropouts.values()) {
      NativeLibrary.status(functions.destroyDropout, state.descriptor());
      cudnn.device().release(state.states());
    }
    dropouts.clear();
  }

  private static MemorySegment pointer(long address) {
    return MemorySegment.ofAddress(address);
  }
}
