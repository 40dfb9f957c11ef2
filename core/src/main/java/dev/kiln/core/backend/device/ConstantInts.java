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
 * <h2>When a cached array is freed</h2>
 *
 * <p>A launcher takes a buffer from {@link #of} and launches with it a moment later, without a
 * lock, while other threads may use the same cache. So a buffer must not be freed as soon as the
 * cache is full. Another thread's launcher could be holding it between the lookup and its launch.
 * The allocator would then hand the freed block to the next upload, which overwrites it at once.
 *
 * <p>The cache therefore works in two generations. When the current one has {@link #MAX_ENTRIES}
 * arrays, it is retired and a new one starts; the arrays of the generation retired before it are
 * freed then. A buffer is thus freed only after {@link #MAX_ENTRIES} more distinct arrays have been
 * uploaded, each with its own allocation and copy (on a GPU, a copy that waits for the device),
 * which takes far longer than a launcher needs from its lookup to its launch. Kernels already
 * queued are no concern: the allocator hands a freed block only to work issued later, which runs
 * after them on the device's one stream.
 *
 * <p>NOTE: that margin is a matter of timing, not enforced: a launcher thread paused between its
 * lookup and its launch while other threads upload a thousand new shapes would still read a reused
 * block. Training and inference use a few dozen shapes, so this needs a workload whose shapes
 * change all the time.
 */
public final class ConstantInts {

  /** Number of arrays that fill one generation. The cache keeps up to twice as many. */
  public static final int MAX_ENTRIES = 1024;

  private final DeviceRuntime runtime;
  private Map<Key, DeviceBuffer> buffers = new HashMap<>();

  /** The previous generation: no longer handed out, and freed when the next one retires. */
  private Map<Key, DeviceBuffer> retired = new HashMap<>();

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
      free(retired);
      retired = buffers;
      buffers = new HashMap<>();
    }
    buffer = runtime.upload(values);
    buffers.put(key, buffer);
    bytes += buffer.bytes();
    return buffer;
  }

  /** Returns the bytes of device memory that the cached arrays of both generations take up. */
  public synchronized long bytes() {
    return bytes;
  }

  /**
   * Frees every cached array of both generations. Only the runtime's {@code close()} calls it, when
   * no launcher can hold a buffer any more.
   */
  public synchronized void clear() {
    free(retired);
    free(buffers);
  }

  private void free(Map<Key, DeviceBuffer> generation) {
    for (DeviceBuffer buffer : generation.values()) {
      runtime.free(buffer);
      bytes -= buffer.bytes();
    }
    generation.clear();
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
