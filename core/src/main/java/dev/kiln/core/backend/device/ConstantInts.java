package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Small int arrays that kernels read from device memory (shapes, strides, reduction flags), each
 * uploaded once per device and then shared by every launch that needs the same values.
 *
 * <p>A copy from a Java array to a GPU first waits for the device to finish its queued work (see
 * {@link dev.kiln.core.backend.cuda.CudaCopies}), so a launcher that uploaded its shape on every
 * call would stall the GPU once per call. A training step uses the same few shapes over and over,
 * so after the first step every lookup here is a hit and no launch waits.
 *
 * <p>The cache keeps at most {@link #MAX_ENTRIES} arrays and starts again from empty when it is
 * full. Emptying it is safe even while queued kernels still read the buffers: the allocator hands a
 * freed block only to work issued later, which runs after them on the device's one stream.
 */
public final class ConstantInts {

  /** Most arrays kept at once. */
  public static final int MAX_ENTRIES = 1024;

  private final DeviceRuntime runtime;
  private final Map<Key, DeviceBuffer> buffers = new HashMap<>();
  private long bytes;

  /** Creates an empty cache for one device. */
  public ConstantInts(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /**
   * Returns a device buffer that contains {@code values}. The buffer belongs to this cache: do not
   * free it or write to it.
   */
  public synchronized DeviceBuffer of(int[] values) {
    Key key = new Key(values.clone());
    DeviceBuffer buffer = buffers.get(key);
    if (buffer != null) {
      return buffer;
    }
    if (buffers.size() >= MAX_ENTRIES) {
      clear();
    }
    buffer = runtime.upload(values);
    buffers.put(key, buffer);
    bytes += buffer.bytes();
    return buffer;
  }

  /** Returns the bytes of device memory that the cached arrays take up. */
  public synchronized long bytes() {
    return bytes;
  }

  /** Frees every cached array. */
  public synchronized void clear() {
    for (DeviceBuffer buffer : buffers.values()) {
      runtime.free(buffer);
    }
    buffers.clear();
    bytes = 0;
  }

  /** An int array compared by its contents, as a map key. */
  private record Key(int[] values) {
    @Override
    public boolean equals(Object other) {
      return other instanceof Key key && Arrays.equals(values, key.values);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(values);
    }
  }
}
