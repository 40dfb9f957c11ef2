package dev.kiln.core.tensor;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceRuntime;
import java.lang.ref.Cleaner;

/**
 * Float32 storage in the memory of a device ({@code cuda:N} or {@code emulated}): one block from
 * the device's caching allocator.
 *
 * <h2>Who frees the block</h2>
 *
 * <p>Tensors that share storage (a reshape, a detach) share this object, so no single tensor knows
 * when the block is free. The garbage collector does: once neither this storage nor a launcher
 * references the block's {@link DeviceBuffer}, a {@link Cleaner} gives the block back to the
 * allocator's cache, where the next allocation of its size finds it. GPU memory is not Java heap,
 * so the collector does not know that a device is filling up. Where an allocation runs out of
 * device memory, the allocator therefore calls {@link #collectUnreachable}, which requests a
 * collection and waits for the cleaner to hand back what became unreachable. The allocator then
 * tries again, a few times while blocks keep coming back, before it reports the error.
 *
 * <p>Two things free blocks sooner. A {@link MemoryScope} releases, when it closes, every storage
 * allocated inside it that was not kept; training steps run in one, so their temporaries go back to
 * the cache at the end of each step. And the gradients that autograd creates and consumes during a
 * backward pass are its own, so it calls {@link #release()} on each one that nothing else shares
 * once it is used.
 *
 * <p>The words for a block's end, from the tensor down:
 *
 * <ul>
 *   <li>{@code Tensor.close()} drops one tensor's reference and frees nothing by itself;
 *   <li>{@link #release()} gives this storage's block back to the allocator's cache at once;
 *   <li>{@code MemoryScope.keep} exempts a tensor from its scope's release;
 *   <li>{@code CachingAllocator.free} puts a block into the cache, for the next request of its
 *       size;
 *   <li>{@code CachingAllocator.emptyCache} and {@code DeviceMemory.free} give cached blocks back
 *       to the driver.
 * </ul>
 *
 * <h2>Element access</h2>
 *
 * <p>{@link #get} and {@link #set} copy one element across and wait for the device, which is fine
 * for {@code item()} and tests but far too slow for a loop. Kernels get the block itself from
 * {@link #buffer()}; bulk reads go through {@link #download()}.
 */
public final class DeviceStorage extends Storage {
  private static final Cleaner CLEANER = Cleaner.create();

  /** Maximum wait, in milliseconds, for the cleaner after an out-of-memory error. */
  private static final long RECLAIM_WAIT_MILLIS = 2000;

  private final Device device;
  private final DeviceKernels kernels;
  private final DeviceBuffer buffer;
  private final int size;
  private final Cleaner.Cleanable cleanable;

  private DeviceStorage(Device device, DeviceKernels kernels, DeviceBuffer buffer, int size) {
    this.device = device;
    this.kernels = kernels;
    this.buffer = buffer;
    this.size = size;
    DeviceRuntime runtime = kernels.runtime();
    long address = buffer.address();
    long bytes = buffer.bytes();
    long allocation = buffer.allocation();
    // The cleaner watches the buffer object, not this storage. A launcher holds the buffer until
    // its work is queued on the stream, even where the tensor that owned the storage became
    // unreachable while the launch was being prepared, so the block cannot go to other work in
    // between. The action must capture neither the buffer nor this storage, or they would stay
    // reachable forever, so it frees the block by its address, size and allocation number.
    this.cleanable =
        CLEANER.register(buffer, () -> runtime.free(new DeviceBuffer(address, bytes, allocation)));
    joinScope();
  }

  /** Gives the block back to the allocator's cache; {@link #release()} calls it. */
  @Override
  void free() {
    cleanable.clean();
  }

  /**
   * Allocates {@code size} zeros on {@code device}.
   *
   * @throws IllegalArgumentException if {@code dtype} is not float32
   * @throws dev.kiln.core.backend.cuda.DeviceOutOfMemoryException if the device stays full after
   *     unreachable tensors were released
   */
  static DeviceStorage zeros(Device device, DType dtype, int size) {
    DeviceStorage storage = uninitialized(device, dtype, size);
    storage.kernels.layout().fill(storage.buffer, size, 0f);
    return storage;
  }

  /**
   * Allocates room for {@code size} floats on {@code device} without setting them: the block keeps
   * whatever it held before, so every element must be written before it is read.
   *
   * @throws IllegalArgumentException if {@code dtype} is not float32
   */
  static DeviceStorage uninitialized(Device device, DType dtype, int size) {
    if (dtype != DType.FLOAT32) {
      throw new IllegalArgumentException(
          device
              + " stores only float32 tensors, because kiln's device kernels compute in float32:"
              + " convert with to(DType.FLOAT32) before moving the tensor");
    }
    DeviceKernels kernels = DeviceKernels.of(device);
    return new DeviceStorage(device, kernels, allocate(kernels, size), size);
  }

  /** Copies float32 values from the host into new storage on {@code device}. */
  static DeviceStorage upload(Device device, float[] values) {
    DeviceKernels kernels = DeviceKernels.of(device);
    DeviceStorage storage =
        new DeviceStorage(device, kernels, allocate(kernels, values.length), values.length);
    if (values.length > 0) {
      kernels.runtime().copyToDevice(values, storage.buffer);
    }
    return storage;
  }

  /**
   * Allocates room for {@code size} floats. At least one float is allocated, so that an empty
   * tensor still has a distinct, valid address.
   */
  private static DeviceBuffer allocate(DeviceKernels kernels, int size) {
    return kernels.runtime().allocateFloats(Math.max(1, size));
  }

  /**
   * Runs the garbage collector and waits until the cleaner has given blocks of {@code runtime}
   * back, or until {@link #RECLAIM_WAIT_MILLIS} pass. Returns whether any block came back. {@link
   * DeviceKernels} installs this as each device allocator's reclaimer.
   */
  public static boolean collectUnreachable(DeviceRuntime runtime) {
    long before = runtime.allocator().stats().bytesInUse();
    System.gc();
    // The wait starts after the collection, which can itself take seconds on a large heap, and
    // the count is checked before the clock, so that blocks that came back during a long pause
    // still count.
    long deadline = System.nanoTime() + RECLAIM_WAIT_MILLIS * 1_000_000;
    while (true) {
      if (runtime.allocator().stats().bytesInUse() < before) {
        return true;
      }
      if (System.nanoTime() >= deadline) {
        return false;
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
  }

  /**
   * Returns a copy of {@code source} on {@code target}. A copy to a device needs float32 values; a
   * copy to the CPU gives float32 arrays.
   *
   * @throws IllegalArgumentException if a float64 source should go to a device
   */
  static Storage transfer(Storage source, Device target) {
    if (target.isCpu()) {
      return Storage.wrap(((DeviceStorage) source).download());
    }
    if (source.dtype() != DType.FLOAT32) {
      throw new IllegalArgumentException(
          "cannot move a "
              + source.dtype()
              + " tensor to "
              + target
              + ": device kernels compute in float32, so convert with to(DType.FLOAT32) first");
    }
    float[] values =
        source instanceof DeviceStorage onDevice ? onDevice.download() : source.floats();
    return upload(target, values);
  }

  /**
   * Returns the block of {@code tensor}'s storage, for a kernel launch, or null for a null tensor
   * (the kernels read a null bias or gamma as absent).
   *
   * @throws IllegalStateException if the tensor lives on the CPU
   */
  public static DeviceBuffer bufferOf(Tensor tensor) {
    return tensor == null ? null : of(tensor).buffer();
  }

  /**
   * Returns the launchers of the device that stores {@code tensor}.
   *
   * @throws IllegalStateException if the tensor lives on the CPU
   */
  public static DeviceKernels kernelsOf(Tensor tensor) {
    return of(tensor).kernels;
  }

  private static DeviceStorage of(Tensor tensor) {
    if (!(tensor.storage() instanceof DeviceStorage onDevice)) {
      throw new IllegalStateException(
          "a " + tensor.device() + " tensor has no device buffer: move it with to(Device)");
    }
    return onDevice;
  }

  /**
   * Returns the device block, which has room for at least {@link #size()} floats.
   *
   * @throws IllegalStateException if the storage was released
   */
  public DeviceBuffer buffer() {
    checkNotReleased();
    return buffer;
  }

  /** Returns the launchers of the device that contains this storage. */
  public DeviceKernels kernels() {
    return kernels;
  }

  @Override
  public Device device() {
    return device;
  }

  @Override
  public DType dtype() {
    return DType.FLOAT32;
  }

  @Override
  public int size() {
    return size;
  }

  /** Copies every element to a new host array, after the work issued so far has finished. */
  public float[] download() {
    float[] values = new float[size];
    if (size > 0) {
      kernels.runtime().copyToHost(buffer(), values);
    }
    return values;
  }

  /** Overwrites every element with {@code values}, which must hold {@link #size()} floats. */
  public void upload(float[] values) {
    if (values.length != size) {
      throw new IllegalArgumentException(
          "cannot upload " + values.length + " values into device storage of " + size);
    }
    kernels.runtime().copyToDevice(values, buffer());
  }

  /** Sets every element to {@code value}, rounded to float32. */
  public void fill(double value) {
    kernels.layout().fill(buffer(), size, (float) value);
    markModified();
  }

  /** Copies the elements of {@code source}, on the same device, into this storage. */
  public void copyFrom(DeviceStorage source) {
    if (source.size != size || !source.device.equals(device)) {
      throw new IllegalArgumentException(
          "cannot copy "
              + source.size
              + " elements on "
              + source.device
              + " into "
              + size
              + " on "
              + device);
    }
    if (size > 0) {
      kernels.runtime().copyWithinDevice(source.buffer(), 0, buffer(), 0, size);
    }
  }

  @Override
  public double get(int index) {
    float[] one = new float[1];
    kernels.runtime().copyToHost(buffer(), checkIndex(index), one, 0, 1);
    return one[0];
  }

  @Override
  public void set(int index, double value) {
    kernels.runtime().copyToDevice(new float[] {(float) value}, 0, buffer(), checkIndex(index), 1);
  }

  private int checkIndex(int index) {
    if (index < 0 || index >= size) {
      throw new IndexOutOfBoundsException(
          "index " + index + " is outside device storage of " + size + " elements");
    }
    return index;
  }

  @Override
  public float[] floats() {
    throw notAnArray();
  }

  @Override
  public double[] doubles() {
    throw notAnArray();
  }

  private IllegalStateException notAnArray() {
    return new IllegalStateException(
        "this storage lives on "
            + device
            + ", not in a Java array: move the tensor with to(Device.CPU) to read its values");
  }

  @Override
  public Storage copy() {
    DeviceStorage copy = new DeviceStorage(device, kernels, allocate(kernels, size), size);
    copy.copyFrom(this);
    return copy;
  }
}
