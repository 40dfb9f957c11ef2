package dev.kiln.core.tensor;

import java.util.Arrays;

/**
 * Flat, contiguous memory behind a tensor: on the CPU a {@code float[]} for float32 or a {@code
 * double[]} for float64, and on a GPU or the emulated device a {@link DeviceStorage} of float32.
 *
 * <p>Reference kernels read and write through {@link #get} and {@link #set}, which work in double
 * precision for both types; a float32 store rounds to the nearest float. Fast kernels take the
 * arrays themselves from {@link #floats()} or {@link #doubles()}.
 *
 * <p>Storage allocated while a {@link MemoryScope} is open on the thread belongs to that scope,
 * which releases it when it closes, unless it was kept. On the CPU a released array of at least
 * {@link ArrayPool#MIN_LENGTH} elements goes to the thread's {@link ArrayPool}, where a later
 * allocation of the same length inside a scope finds it. Any later use of the released storage
 * fails.
 */
public abstract sealed class Storage permits Storage.F32, Storage.F64, DeviceStorage {
  private int version;

  /** This storage's place in the scope that releases it when it closes, or null. */
  private volatile MemoryScope.Membership membership;

  private volatile boolean released;

  /** Allocates zero-filled storage of {@code size} elements. */
  public static Storage allocate(DType dtype, int size) {
    return allocateOnHeap(dtype, size, true);
  }

  /**
   * Allocates zero-filled storage of {@code size} elements on {@code device}.
   *
   * @throws IllegalArgumentException if the device cannot hold {@code dtype}: kiln's GPU kernels
   *     compute in float32 only
   */
  public static Storage allocate(DType dtype, int size, Device device) {
    return device.isCpu() ? allocate(dtype, size) : DeviceStorage.zeros(device, dtype, size);
  }

  /**
   * Allocates storage of {@code size} elements on {@code device} whose values are unspecified until
   * written: on a device whatever the block held before, and on the CPU zeros in a new array or the
   * old values of an array that a memory scope released. Ops use it for outputs that a kernel
   * overwrites entirely, which saves a fill.
   */
  public static Storage allocateUninitialized(DType dtype, int size, Device device) {
    return device.isCpu()
        ? allocateOnHeap(dtype, size, false)
        : DeviceStorage.uninitialized(device, dtype, size);
  }

  /**
   * Allocates a Java array of {@code size} elements. Inside a memory scope the array comes from the
   * thread's pool where one of that length is free, and it is filled with zeros if {@code zeroed}
   * is true. A new Java array starts zeroed anyway.
   */
  private static Storage allocateOnHeap(DType dtype, int size, boolean zeroed) {
    MemoryScope scope = MemoryScope.innermost();
    if (scope == null) {
      return dtype == DType.FLOAT32
          ? new F32(new float[size], true)
          : new F64(new double[size], true);
    }
    ArrayPool pool = ArrayPool.ofThisThread();
    Storage storage;
    if (dtype == DType.FLOAT32) {
      float[] array = pool.takeFloats(size);
      if (array == null) {
        array = new float[size];
      } else if (zeroed) {
        Arrays.fill(array, 0f);
      }
      storage = new F32(array, true);
    } else {
      double[] array = pool.takeDoubles(size);
      if (array == null) {
        array = new double[size];
      } else if (zeroed) {
        Arrays.fill(array, 0.0);
      }
      storage = new F64(array, true);
    }
    storage.joinScope();
    return storage;
  }

  /**
   * Wraps an existing array without copying it. The array stays the caller's: no memory scope
   * releases it.
   */
  public static Storage wrap(float[] data) {
    return new F32(data, false);
  }

  /**
   * Wraps an existing array without copying it. The array stays the caller's: no memory scope
   * releases it.
   */
  public static Storage wrap(double[] data) {
    return new F64(data, false);
  }

  public abstract DType dtype();

  /** Returns the device that stores the elements: {@link Device#CPU} for the Java arrays. */
  public Device device() {
    return Device.CPU;
  }

  /**
   * Counter of in-place changes made through {@link #markModified()}. Autograd compares it at
   * backward time with the value it saw in the forward pass, to catch a tensor that was changed in
   * between, which would silently corrupt the gradients.
   */
  public int version() {
    return version;
  }

  /**
   * Records an in-place change. Code that writes into a tensor after ops may have used it
   * (optimizers, weight loading, {@code Tensor.set}) calls this; kernels that fill fresh outputs
   * need not.
   */
  public void markModified() {
    version++;
  }

  /** Makes the calling thread's innermost memory scope, if one is open, the owner. */
  final void joinScope() {
    membership = MemoryScope.adopt(this, poolableArray());
  }

  /**
   * Returns the Java array that a scope may hand to the thread's pool even after this storage
   * became unreachable, or null: device storage and wrapped arrays have none.
   */
  Object poolableArray() {
    return null;
  }

  /** Returns the scope that will release this storage, or null. */
  final MemoryScope scope() {
    MemoryScope.Membership current = membership;
    return current == null ? null : current.scope();
  }

  /** Leaves the owning scope, so that only the garbage collector frees the memory. */
  final void leaveScope() {
    MemoryScope.Membership current = membership;
    if (current != null) {
      current.leave();
      membership = null;
    }
  }

  /** Returns whether {@link #release()} has given the memory back. */
  public final boolean isReleased() {
    return released;
  }

  /**
   * Gives the memory back now, instead of when the garbage collector finds this storage
   * unreachable: a device block to the allocator's cache, a Java array to the calling thread's
   * pool. Only the owner of every tensor that uses this storage may call it, and only on the thread
   * that allocated it. Any later use of the storage fails. Calling it again does nothing.
   */
  public final void release() {
    if (!released) {
      released = true;
      // The scope must not hand the memory back a second time when it closes.
      leaveScope();
      free();
    }
  }

  /**
   * Hands the memory back; {@link #release()} calls it once. A Java array goes to the calling
   * thread's pool, unless it is the caller's own. Device storage overrides this.
   */
  void free() {
    Object array = poolableArray();
    if (array != null) {
      ArrayPool.ofThisThread().give(array);
    }
  }

  /**
   * Throws the error for a use after {@link #release()}.
   *
   * @throws IllegalStateException if the storage was released
   */
  final void checkNotReleased() {
    if (released) {
      throw new IllegalStateException(
          (device().isCpu() ? "" : device() + " ")
              + "storage of "
              + size()
              + " "
              + dtype()
              + " elements was released and can no longer be used: a memory scope released it"
              + " when it closed, or backward did after using it. Read or keep (MemoryScope.keep)"
              + " what you need before the scope closes");
    }
  }

  /** Number of elements. */
  public abstract int size();

  public abstract double get(int index);

  /**
   * Writes one element. Unlike {@code Tensor.set}, this does not count as an in-place change
   * ({@link #markModified()}), because kernels fill fresh outputs through it. Code that changes a
   * tensor that ops may have used must call {@link #markModified()} itself.
   */
  public abstract void set(int index, double value);

  /** Adds {@code value} to the element at {@code index}. */
  public void add(int index, double value) {
    set(index, get(index) + value);
  }

  /**
   * Returns the backing array of a float32 storage. Inside a memory scope, the array goes to the
   * thread's pool when the scope closes, so do not keep it beyond the scope.
   */
  public float[] floats() {
    throw new IllegalStateException("storage is " + dtype() + ", not float32");
  }

  /**
   * Returns the backing array of a float64 storage. Inside a memory scope, the array goes to the
   * thread's pool when the scope closes, so do not keep it beyond the scope.
   */
  public double[] doubles() {
    throw new IllegalStateException("storage is " + dtype() + ", not float64");
  }

  /** Returns a deep copy. */
  public abstract Storage copy();

  /** Float32 storage. */
  public static final class F32 extends Storage {
    private final float[] data;

    /** Whether the array may go to a pool on release: false for an array the caller wrapped. */
    private final boolean pooled;

    F32(float[] data, boolean pooled) {
      this.data = data;
      this.pooled = pooled;
    }

    @Override
    public DType dtype() {
      return DType.FLOAT32;
    }

    @Override
    public int size() {
      return data.length;
    }

    @Override
    public double get(int index) {
      checkNotReleased();
      return data[index];
    }

    @Override
    public void set(int index, double value) {
      checkNotReleased();
      data[index] = (float) value;
    }

    @Override
    public float[] floats() {
      checkNotReleased();
      return data;
    }

    @Override
    public Storage copy() {
      checkNotReleased();
      Storage copy = allocateOnHeap(DType.FLOAT32, data.length, false);
      System.arraycopy(data, 0, copy.floats(), 0, data.length);
      return copy;
    }

    @Override
    Object poolableArray() {
      return pooled ? data : null;
    }
  }

  /** Float64 storage. */
  public static final class F64 extends Storage {
    private final double[] data;

    /** Whether the array may go to a pool on release: false for an array the caller wrapped. */
    private final boolean pooled;

    F64(double[] data, boolean pooled) {
      this.data = data;
      this.pooled = pooled;
    }

    @Override
    public DType dtype() {
      return DType.FLOAT64;
    }

    @Override
    public int size() {
      return data.length;
    }

    @Override
    public double get(int index) {
      checkNotReleased();
      return data[index];
    }

    @Override
    public void set(int index, double value) {
      checkNotReleased();
      data[index] = value;
    }

    @Override
    public void add(int index, double value) {
      checkNotReleased();
      data[index] += value;
    }

    @Override
    public double[] doubles() {
      checkNotReleased();
      return data;
    }

    @Override
    public Storage copy() {
      checkNotReleased();
      Storage copy = allocateOnHeap(DType.FLOAT64, data.length, false);
      System.arraycopy(data, 0, copy.doubles(), 0, data.length);
      return copy;
    }

    @Override
    Object poolableArray() {
      return pooled ? data : null;
    }
  }
}
