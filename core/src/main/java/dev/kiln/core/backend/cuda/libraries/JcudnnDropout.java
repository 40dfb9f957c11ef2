package dev.kiln.core.backend.cuda.libraries;

import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.check;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.pointer;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnDropoutDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;

/**
 * Dropout through JCudnn, with one descriptor and its random states per probability and seed, as in
 * {@link CudnnDirectLayers}. The caller holds the lock of {@link JcudnnDnn}.
 */
final class JcudnnDropout implements AutoCloseable {

  private record Key(float probability, long seed) {}

  private record State(cudnnDropoutDescriptor descriptor, DeviceBuffer states) {}

  private final cudnnHandle handle;
  private final VendorDevice device;
  private final Map<Key, State> states = new HashMap<>();

  JcudnnDropout(cudnnHandle handle, VendorDevice device) {
    this.handle = handle;
    this.device = device;
  }

  long reserveBytes(int elements) {
    try (JcudnnScope scope = new JcudnnScope()) {
      long[] bytes = new long[1];
      check(
          JCudnn.cudnnDropoutGetReserveSpaceSize(scope.tensor(Nchw.flat(elements)), bytes),
          "cudnnDropoutGetReserveSpaceSize",
          "elements=" + elements);
      return bytes[0];
    }
  }

  void forward(
      float probability, long seed, int elements, long x, long y, long reserve, long reserveBytes) {
    device.makeCurrent().run();
    cudnnDropoutDescriptor dropout = descriptor(probability, seed);
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(Nchw.flat(elements));
      check(
          JCudnn.cudnnDropoutForward(
              handle,
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

  void backward(
      float probability,
      long seed,
      int elements,
      long dy,
      long dx,
      long reserve,
      long reserveBytes) {
    device.makeCurrent().run();
    cudnnDropoutDescriptor dropout = descriptor(probability, seed);
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(Nchw.flat(elements));
      check(
          JCudnn.cudnnDropoutBackward(
              handle,
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

  /** Returns the descriptor of this probability and seed, creating it on first use. */
  private cudnnDropoutDescriptor descriptor(float probability, long seed) {
    Key key = new Key(probability, seed);
    State state = states.get(key);
    if (state != null) {
      return state.descriptor();
    }
    cudnnDropoutDescriptor descriptor = new cudnnDropoutDescriptor();
    check(JCudnn.cudnnCreateDropoutDescriptor(descriptor), "cudnnCreateDropoutDescriptor", "");
    long[] bytes = new long[1];
    DeviceBuffer buffer = null;
    try {
      check(JCudnn.cudnnDropoutGetStatesSize(handle, bytes), "cudnnDropoutGetStatesSize", "");
      buffer = device.workspace(bytes[0]);
      check(
          JCudnn.cudnnSetDropoutDescriptor(
              descriptor,
              handle,
              probability,
              buffer == null ? new Pointer() : pointer(buffer.address()),
              bytes[0],
              seed),
          "cudnnSetDropoutDescriptor",
          "probability=" + probability + ", seed=" + seed + ", states=" + bytes[0] + " bytes");
    } catch (RuntimeException e) {
      JCudnn.cudnnDestroyDropoutDescriptor(descriptor);
      device.release(buffer);
      throw e;
    }
    states.put(key, new State(descriptor, buffer));
    return descriptor;
  }

  /** Destroys the descriptors and returns their states to the allocator. */
  @Override
  public void close() {
    for (State state : states.values()) {
      JCudnn.cudnnDestroyDropoutDescriptor(state.descriptor());
      device.release(state.states());
    }
    states.clear();
  }
}
