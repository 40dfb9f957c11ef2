package dev.kiln.core.tensor;

/**
 * Flat, contiguous memory behind a tensor: on the CPU a {@code float[]} for float32 or a {@code
 * double[]} for float64, and on a GPU or the emulated device a {@link DeviceStorage} of float32.
 *
 * <p>Reference kernels read and write through {@link #get} and {@link #set}, which work in double
 * precision for both types; a float32 store rounds to the nearest float. Fast kernels take the
 * arrays themselves from {@link #floats()} or {@link #doubles()}.
 */
public abstract sealed class Storage permits Storage.F32, Storage.F64, DeviceStorage {
  private int version;

  /** Allocates zero-filled storage of {@code size} elements. */
  public static Storage allocate(DType dtype, int size) {
    return switch (dtype) {
      case FLOAT32 -> new F32(new float[size]);
      case FLOAT64 -> new F64(new double[size]);
    };
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
   * written: zeros on the CPU, where Java arrays start zeroed, and whatever the block held before
   * on a device. Ops use it for outputs that a kernel overwrites entirely, which saves a fill.
   */
  public static Storage allocateUninitialized(DType dtype, int size, Device device) {
    return device.isCpu()
        ? allocate(dtype, size)
        : DeviceStorage.uninitialized(device, dtype, size);
  }

  /** Wraps an existing array without copying it. */
  public static Storage wrap(float[] data) {
    return new F32(data);
  }

  /** Wraps an existing array without copying it. */
  public static Storage wrap(double[] data) {
    return new F64(data);
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

  /** Number of elements. */
  public abstract int size();

  public abstract double get(int index);

  public abstract void set(int index, double value);

  /** Adds {@code value} to the element at {@code index}. */
  public void add(int index, double value) {
    set(index, get(index) + value);
  }

  /** Returns the backing array of a float32 storage. */
  public float[] floats() {
    throw new IllegalStateException("storage is " + dtype() + ", not float32");
  }

  /** Returns the backing array of a float64 storage. */
  public double[] doubles() {
    throw new IllegalStateException("storage is " + dtype() + ", not float64");
  }

  /** Returns a deep copy. */
  public abstract Storage copy();

  /** Float32 storage. */
  public static final class F32 extends Storage {
    private final float[] data;

    F32(float[] data) {
      this.data = data;
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
      return data[index];
    }

    @Override
    public void set(int index, double value) {
      data[index] = (float) value;
    }

    @Override
    public float[] floats() {
      return data;
    }

    @Override
    public Storage copy() {
      return new F32(data.clone());
    }
  }

  /** Float64 storage. */
  public static final class F64 extends Storage {
    private final double[] data;

    F64(double[] data) {
      this.data = data;
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
      return data[index];
    }

    @Override
    public void set(int index, double value) {
      data[index] = value;
    }

    @Override
    public void add(int index, double value) {
      data[index] += value;
    }

    @Override
    public double[] doubles() {
      return data;
    }

    @Override
    public Storage copy() {
      return new F64(data.clone());
    }
  }
}
