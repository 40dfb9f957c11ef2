package dev.kiln.core.tensor;

import dev.kiln.core.autograd.Node;
import java.util.Arrays;

/**
 * An n-dimensional array of float32 or float64 values, in contiguous row-major layout, that can
 * record the operations applied to it for reverse-mode differentiation.
 *
 * <p>Operations live in {@link dev.kiln.core.ops}; the instance methods here forward to them so
 * that expressions read left to right: {@code x.matmul(w).add(b).relu()}.
 *
 * <p>A tensor's values may change in place (optimizers do that), but its shape, dtype and device
 * never do. Tensors are not thread-safe: share one between threads only to read it.
 */
public final class Tensor implements AutoCloseable {
  private final int[] shape;
  private final Device device;
  private Storage storage;

  private boolean requiresGrad;
  private Tensor grad;
  private Node gradFn;

  /** Wraps storage without copying; the storage must have exactly as many elements as the shape. */
  public Tensor(Storage storage, int[] shape, Device device) {
    int count = Shapes.numel(shape);
    if (storage.size() != count) {
      throw new IllegalArgumentException(
          "storage of "
              + storage.size()
              + " elements does not fit shape "
              + Shapes.format(shape)
              + " ("
              + count
              + " elements)");
    }
    this.storage = storage;
    this.shape = shape.clone();
    this.device = device;
  }

  // ---- Factories -------------------------------------------------------------------------------

  /** Returns a float64 tensor holding a copy of {@code values}. */
  public static Tensor of(double[] values, int... shape) {
    return new Tensor(Storage.wrap(values.clone()), shape, Device.CPU);
  }

  /** Returns a float32 tensor holding a copy of {@code values}. */
  public static Tensor of(float[] values, int... shape) {
    return new Tensor(Storage.wrap(values.clone()), shape, Device.CPU);
  }

  /** Returns a zero-dimensional tensor. */
  public static Tensor scalar(double value, DType dtype) {
    Tensor t = zeros(dtype);
    t.storage.set(0, value);
    return t;
  }

  public static Tensor zeros(DType dtype, int... shape) {
    return new Tensor(Storage.allocate(dtype, Shapes.numel(shape)), shape, Device.CPU);
  }

  public static Tensor ones(DType dtype, int... shape) {
    return full(1.0, dtype, shape);
  }

  public static Tensor full(double value, DType dtype, int... shape) {
    Tensor t = zeros(dtype, shape);
    for (int i = 0; i < t.storage.size(); i++) {
      t.storage.set(i, value);
    }
    return t;
  }

  /** Returns a zero tensor with the shape, dtype and device of {@code like}. */
  public static Tensor zerosLike(Tensor like) {
    return new Tensor(Storage.allocate(like.dtype(), like.numel()), like.shape, like.device);
  }

  // ---- Metadata --------------------------------------------------------------------------------

  /** Returns a copy of the shape. */
  public int[] shape() {
    return shape.clone();
  }

  /** Returns the size of dimension {@code dim}; negative values count from the end. */
  public int size(int dim) {
    return shape[Shapes.normalizeDim(dim, shape.length, "size", shape)];
  }

  /** Number of dimensions. */
  public int dim() {
    return shape.length;
  }

  /** Number of elements. */
  public int numel() {
    return storage.size();
  }

  public DType dtype() {
    return storage.dtype();
  }

  public Device device() {
    return device;
  }

  /**
   * Returns the storage behind this tensor. Backends and optimizers write to it directly; other
   * code should treat it as read-only.
   */
  public Storage storage() {
    return storage;
  }

  // ---- Reading values --------------------------------------------------------------------------

  /** Returns the value of a one-element tensor. */
  public double item() {
    if (storage.size() != 1) {
      throw new IllegalStateException(
          "item() needs a tensor with one element, but the shape is " + Shapes.format(shape));
    }
    return storage.get(0);
  }

  /** Returns the element at the given index, one number per dimension. */
  public double get(int... index) {
    return storage.get(flatIndex(index));
  }

  /** Sets the element at the given index; this bypasses autograd. */
  public void set(double value, int... index) {
    storage.set(flatIndex(index), value);
  }

  private int flatIndex(int[] index) {
    if (index.length != shape.length) {
      throw new IllegalArgumentException(
          "index "
              + Arrays.toString(index)
              + " has "
              + index.length
              + " numbers but the tensor has shape "
              + Shapes.format(shape));
    }
    int flat = 0;
    for (int d = 0; d < shape.length; d++) {
      if (index[d] < 0 || index[d] >= shape[d]) {
        throw new IndexOutOfBoundsException(
            "index "
                + Arrays.toString(index)
                + " is out of bounds for shape "
                + Shapes.format(shape));
      }
      flat = flat * shape[d] + index[d];
    }
    return flat;
  }

  /** Returns the values as a new double array in row-major order. */
  public double[] toDoubleArray() {
    double[] out = new double[storage.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = storage.get(i);
    }
    return out;
  }

  /** Returns the values as a new float array in row-major order. */
  public float[] toFloatArray() {
    float[] out = new float[storage.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) storage.get(i);
    }
    return out;
  }

  // ---- Autograd state --------------------------------------------------------------------------

  /** Whether gradients flow to this tensor: it is a leaf that asked for them or an op result. */
  public boolean requiresGrad() {
    return requiresGrad;
  }

  /**
   * Marks a leaf tensor as needing a gradient, so that {@code backward()} fills {@link #grad()}.
   */
  public Tensor requiresGrad(boolean value) {
    if (gradFn != null && !value) {
      throw new IllegalStateException(
          "requiresGrad(false) is only for leaf tensors; call detach() to cut this tensor from"
              + " the graph");
    }
    this.requiresGrad = value;
    return this;
  }

  /** The accumulated gradient of a leaf, or null before the first backward pass. */
  public Tensor grad() {
    return grad;
  }

  /** Replaces the gradient; used by backward and by code that scales or clips gradients. */
  public void setGrad(Tensor value) {
    this.grad = value;
  }

  /** Drops the accumulated gradient, as PyTorch's {@code zero_grad(set_to_none=True)} does. */
  public void zeroGrad() {
    this.grad = null;
  }

  /** The node that produced this tensor, or null for a leaf. */
  public Node gradFn() {
    return gradFn;
  }

  /** Whether this tensor was created by the user rather than by a recorded op. */
  public boolean isLeaf() {
    return gradFn == null;
  }

  /** Attaches the node that produced this tensor; only ops call this. */
  public void setGradFn(Node node) {
    this.gradFn = node;
    this.requiresGrad = node != null;
  }

  /** Releases the storage. Any later use of this tensor fails. */
  @Override
  public void close() {
    storage = Storage.allocate(dtype(), 0);
    gradFn = null;
    grad = null;
  }
}
