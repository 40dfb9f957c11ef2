package dev.kiln.core.tensor;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.autograd.Node;
import dev.kiln.core.ops.Checks;
import dev.kiln.core.ops.Elementwise;
import dev.kiln.core.ops.MatMul;
import dev.kiln.core.ops.Reductions;
import dev.kiln.core.ops.ShapeOps;
import java.util.Arrays;

/**
 * An n-dimensional array of float32 or float64 values, in contiguous row-major layout, that can
 * record the operations applied to it for reverse-mode differentiation.
 *
 * <p>Operations live in {@link dev.kiln.core.ops}; the instance methods here forward to them so
 * that expressions read left to right: {@code x.matmul(w).add(b).relu()}.
 *
 * <p>A tensor lives on a {@link Device}: the CPU, where its storage is a Java array, or a GPU or
 * the emulated device, where its storage is a {@link DeviceStorage} block and every op runs as a
 * kernel on that device. {@link #to(Device)} copies a tensor from one device to another, and an op
 * whose operands live on different devices fails with a message that names both.
 *
 * <p>A tensor's values may change in place (optimizers do that), but its shape never does. Its
 * dtype and device change only when a module replaces its storage ({@link #setStorage}). Tensors
 * are not thread-safe: share one between threads only to read it.
 */
public final class Tensor implements AutoCloseable {
  private final int[] shape;
  private Device device;
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
    if (!storage.device().equals(device)) {
      throw new IllegalArgumentException(
          "storage on " + storage.device() + " cannot back a tensor on " + device);
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

  /** Returns a zero tensor on {@code device}. */
  public static Tensor zeros(DType dtype, Device device, int... shape) {
    return new Tensor(Storage.allocate(dtype, Shapes.numel(shape), device), shape, device);
  }

  public static Tensor ones(DType dtype, int... shape) {
    return full(1.0, dtype, shape);
  }

  public static Tensor full(double value, DType dtype, int... shape) {
    return full(value, dtype, Device.CPU, shape);
  }

  /** Returns a tensor on {@code device} with every element set to {@code value}. */
  public static Tensor full(double value, DType dtype, Device device, int... shape) {
    if (!device.isCpu()) {
      // One fill kernel writes every element, so the block needs no zeros first.
      Tensor t = empty(dtype, device, shape);
      ((DeviceStorage) t.storage).fill(value);
      return t;
    }
    Tensor t = zeros(dtype, device, shape);
    for (int i = 0; i < t.storage.size(); i++) {
      t.storage.set(i, value);
    }
    return t;
  }

  /**
   * Returns a tensor whose values are unspecified until written (see {@link
   * Storage#allocateUninitialized}), for op outputs that a kernel overwrites entirely.
   */
  public static Tensor empty(DType dtype, Device device, int... shape) {
    return new Tensor(
        Storage.allocateUninitialized(dtype, Shapes.numel(shape), device), shape, device);
  }

  /** Returns {@link #empty} with the shape, dtype and device of {@code like}. */
  public static Tensor emptyLike(Tensor like) {
    return empty(like.dtype(), like.device, like.shape);
  }

  /** Returns a zero tensor with the shape, dtype and device of {@code like}. */
  public static Tensor zerosLike(Tensor like) {
    return new Tensor(
        Storage.allocate(like.dtype(), like.numel(), like.device), like.shape, like.device);
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
    return live().size();
  }

  public DType dtype() {
    return live().dtype();
  }

  public Device device() {
    return device;
  }

  /**
   * Returns the storage behind this tensor. Backends and optimizers write to it directly; other
   * code should treat it as read-only.
   */
  public Storage storage() {
    return live();
  }

  private Storage live() {
    if (storage == null) {
      throw new IllegalStateException(
          "tensor of shape " + Shapes.format(shape) + " was closed and can no longer be used");
    }
    return storage;
  }

  // ---- Reading values --------------------------------------------------------------------------

  /** Returns the value of a one-element tensor. */
  public double item() {
    if (live().size() != 1) {
      throw new IllegalStateException(
          "item() needs a tensor with one element, but the shape is " + Shapes.format(shape));
    }
    return live().get(0);
  }

  /** Returns the element at the given index, one number per dimension. */
  public double get(int... index) {
    return live().get(flatIndex(index));
  }

  /** Sets the element at the given index; this bypasses autograd. */
  public void set(double value, int... index) {
    live().set(flatIndex(index), value);
    live().markModified();
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

  /**
   * Returns the values as a new double array in row-major order. A device tensor is copied to the
   * host first, once the work issued so far has finished.
   */
  public double[] toDoubleArray() {
    if (live() instanceof DeviceStorage onDevice) {
      float[] values = onDevice.download();
      double[] out = new double[values.length];
      for (int i = 0; i < out.length; i++) {
        out[i] = values[i];
      }
      return out;
    }
    double[] out = new double[live().size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = live().get(i);
    }
    return out;
  }

  /** Returns the values as a new float array in row-major order, as {@link #toDoubleArray}. */
  public float[] toFloatArray() {
    if (live() instanceof DeviceStorage onDevice) {
      return onDevice.download();
    }
    float[] out = new float[live().size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) live().get(i);
    }
    return out;
  }

  // ---- Arithmetic (see Elementwise) ------------------------------------------------------------

  public Tensor add(Tensor other) {
    return Elementwise.add(this, other);
  }

  public Tensor add(double value) {
    return Elementwise.addScalar(this, value);
  }

  public Tensor sub(Tensor other) {
    return Elementwise.sub(this, other);
  }

  public Tensor sub(double value) {
    return Elementwise.addScalar(this, -value);
  }

  public Tensor mul(Tensor other) {
    return Elementwise.mul(this, other);
  }

  public Tensor mul(double value) {
    return Elementwise.mulScalar(this, value);
  }

  public Tensor div(Tensor other) {
    return Elementwise.div(this, other);
  }

  public Tensor div(double value) {
    // A true division: multiplying by 1 / value can be off by one ulp, as 5 * (1 / 3.0) is.
    // The divisor is made on this tensor's device: a fill there, not a copy that waits for it.
    return Elementwise.div(this, full(value, dtype(), device));
  }

  public Tensor neg() {
    return Elementwise.neg(this);
  }

  public Tensor exp() {
    return Elementwise.exp(this);
  }

  public Tensor log() {
    return Elementwise.log(this);
  }

  public Tensor sqrt() {
    return Elementwise.sqrt(this);
  }

  public Tensor pow(double exponent) {
    return Elementwise.pow(this, exponent);
  }

  public Tensor abs() {
    return Elementwise.abs(this);
  }

  public Tensor clamp(double min, double max) {
    return Elementwise.clamp(this, min, max);
  }

  public Tensor maximum(Tensor other) {
    return Elementwise.maximum(this, other);
  }

  public Tensor relu() {
    return Elementwise.relu(this);
  }

  public Tensor tanh() {
    return Elementwise.tanh(this);
  }

  public Tensor sigmoid() {
    return Elementwise.sigmoid(this);
  }

  // ---- Reductions (see Reductions) -------------------------------------------------------------

  /** Sum of all elements, as a scalar tensor. */
  public Tensor sum() {
    return Reductions.sum(this);
  }

  public Tensor sum(int[] dims, boolean keepDim) {
    return Reductions.sum(this, dims, keepDim);
  }

  /** Mean of all elements, as a scalar tensor. */
  public Tensor mean() {
    return Reductions.mean(this);
  }

  public Tensor mean(int[] dims, boolean keepDim) {
    return Reductions.mean(this, dims, keepDim);
  }

  /** Maximum of all elements, as a scalar tensor. */
  public Tensor max() {
    return Reductions.max(this);
  }

  /** Maximum along one dimension, with the positions of the maxima. */
  public Reductions.MaxResult max(int dim, boolean keepDim) {
    return Reductions.max(this, dim, keepDim);
  }

  /** Variance over {@code dims}, unbiased (n - 1 divisor) when asked. */
  public Tensor variance(int[] dims, boolean unbiased, boolean keepDim) {
    return Reductions.variance(this, dims, unbiased, keepDim);
  }

  // ---- Shapes (see ShapeOps) -------------------------------------------------------------------

  /** Same elements in a new shape, sharing storage; one size may be -1. */
  public Tensor reshape(int... newShape) {
    return ShapeOps.reshape(this, newShape);
  }

  /** Same as {@link #reshape}: every tensor is contiguous, so every reshape is a view. */
  public Tensor view(int... newShape) {
    return ShapeOps.reshape(this, newShape);
  }

  /** Merges all dimensions into one. */
  public Tensor flatten() {
    return ShapeOps.flatten(this, 0, -1);
  }

  public Tensor flatten(int startDim, int endDim) {
    return ShapeOps.flatten(this, startDim, endDim);
  }

  public Tensor unsqueeze(int dim) {
    return ShapeOps.unsqueeze(this, dim);
  }

  public Tensor squeeze(int dim) {
    return ShapeOps.squeeze(this, dim);
  }

  /**
   * Reorders the dimensions, as a copy: kiln's tensors are always contiguous, so unlike PyTorch's
   * {@code permute} the result does not share storage with this tensor.
   */
  public Tensor permute(int... dims) {
    return ShapeOps.permute(this, dims);
  }

  /** Swaps two dimensions, as a copy, for the reason {@link #permute} gives. */
  public Tensor transpose(int dim0, int dim1) {
    return ShapeOps.transpose(this, dim0, dim1);
  }

  /** Elements {@code start <= i < end} along {@code dim}, as a copy. */
  public Tensor slice(int dim, int start, int end) {
    return ShapeOps.slice(this, dim, start, end);
  }

  /** Joins tensors along {@code dim}. */
  public static Tensor cat(int dim, Tensor... tensors) {
    return ShapeOps.cat(dim, tensors);
  }

  /**
   * Broadcasts to {@code newShape}, as a copy. When the shape already is {@code newShape}, returns
   * this tensor itself, which shares its storage.
   */
  public Tensor expand(int... newShape) {
    return ShapeOps.expand(this, newShape);
  }

  // ---- Linear algebra --------------------------------------------------------------------------

  /** Matrix product with batch broadcasting (see {@link MatMul#matmul}). */
  public Tensor matmul(Tensor other) {
    return MatMul.matmul(this, other);
  }

  // ---- Copies and conversions ------------------------------------------------------------------

  /** Returns a copy with its own storage; the copy stays in the graph. */
  public Tensor copy() {
    return Elementwise.copy(this);
  }

  /** Converts to another dtype; returns this tensor when the dtype already matches. */
  public Tensor to(DType target) {
    return Elementwise.toDType(this, target);
  }

  /**
   * Copies this tensor to another device; returns this tensor when it is already there. The copy
   * stays in the graph: its gradient is copied back to this tensor's device.
   *
   * <p>Devices other than the CPU hold float32 only, so convert a float64 tensor with {@code
   * to(DType.FLOAT32)} before moving it there.
   *
   * @throws IllegalArgumentException if a float64 tensor should move to a device
   * @throws IllegalStateException if the target device cannot be used, with the reason
   */
  public Tensor to(Device target) {
    if (target.equals(device)) {
      return this;
    }
    Tensor out = new Tensor(DeviceStorage.transfer(live(), target), shape, target);
    Device source = device;
    return Autograd.record("to", out, g -> new Tensor[] {g.to(source)}, this);
  }

  /**
   * Returns a copy with storage of its own, cut from the graph, as {@code dtype} on {@code target}.
   * Modules and optimizers load and save their state with it. The values pass through the CPU,
   * where the dtype conversion happens, because devices hold float32 only.
   *
   * @throws IllegalArgumentException if a float64 copy should go to a device
   */
  public Tensor copyAs(DType dtype, Device target) {
    try (var _ = GradMode.noGrad()) {
      // A transfer to the CPU, like a dtype conversion, already makes a fresh copy.
      Tensor host = (device.isCpu() ? detach() : detach().to(Device.CPU)).to(dtype);
      if (!target.isCpu()) {
        return host.to(target);
      }
      return host.storage() == live() ? host.copy() : host;
    }
  }

  /** Returns a tensor that shares this one's storage but is cut from the graph. */
  public Tensor detach() {
    return new Tensor(live(), shape, device);
  }

  /** Copies the values of {@code source} into this tensor in place, bypassing autograd. */
  public void copyFrom(Tensor source) {
    Checks.sameDTypeAndDevice("copyFrom", this, source);
    if (!Arrays.equals(shape, source.shape)) {
      throw new IllegalArgumentException(
          "copyFrom: shape "
              + Shapes.format(source.shape)
              + " does not match "
              + Shapes.format(shape));
    }
    if (live() instanceof DeviceStorage onDevice) {
      onDevice.copyFrom((DeviceStorage) source.live());
    } else {
      for (int i = 0; i < live().size(); i++) {
        live().set(i, source.live().get(i));
      }
    }
    live().markModified();
  }

  // ---- Backward --------------------------------------------------------------------------------

  /** Backpropagates from a one-element tensor, then frees the graph. */
  public void backward() {
    Autograd.backward(this, null, false);
  }

  /** Backpropagates with {@code gradient} as the upstream gradient, then frees the graph. */
  public void backward(Tensor gradient) {
    Autograd.backward(this, gradient, false);
  }

  /** Backpropagates; with {@code retainGraph} the graph stays usable for another pass. */
  public void backward(Tensor gradient, boolean retainGraph) {
    Autograd.backward(this, gradient, retainGraph);
  }

  @Override
  public String toString() {
    if (storage == null) {
      return "Tensor(" + Shapes.format(shape) + ", closed)";
    }
    if (isReleased()) {
      return "Tensor(" + Shapes.format(shape) + ", " + device + ", released)";
    }
    StringBuilder text = new StringBuilder("Tensor(");
    text.append(Shapes.format(shape)).append(", ").append(dtype());
    if (!device.equals(Device.CPU)) {
      text.append(", ").append(device);
    }
    if (gradFn != null) {
      text.append(", gradFn=").append(gradFn);
    } else if (requiresGrad) {
      text.append(", requiresGrad");
    }
    text.append(")");
    int shown = Math.min(live().size(), 8);
    text.append(" [");
    for (int i = 0; i < shown; i++) {
      text.append(i == 0 ? "" : ", ").append(live().get(i));
    }
    text.append(live().size() > shown ? ", ...]" : "]");
    return text.toString();
  }

  // ---- Autograd state --------------------------------------------------------------------------

  /**
   * Whether gradients flow to this tensor: it is a leaf that asked for them, or the result of an op
   * recorded while an input required a gradient.
   */
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
    if (value != null && !Arrays.equals(value.shape, shape)) {
      throw new IllegalArgumentException(
          "gradient of shape "
              + Shapes.format(value.shape)
              + " does not match the tensor's shape "
              + Shapes.format(shape));
    }
    this.grad = value;
  }

  /** Drops the accumulated gradient, as PyTorch's {@code zero_grad(set_to_none=True)} does. */
  public void zeroGrad() {
    this.grad = null;
  }

  /**
   * Returns whether this tensor's storage was released, after which any use of the tensor fails. A
   * {@link MemoryScope} releases storage when it closes. Backward releases the intermediate
   * gradients that it used up: all of them on a device, and on the CPU those that a scope owns.
   */
  public boolean isReleased() {
    return storage != null && storage.isReleased();
  }

  /** Returns whether {@link #close()} was called, after which any use of the tensor fails. */
  public boolean isClosed() {
    return storage == null;
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

  /**
   * Replaces the storage in place, keeping the shape; the new storage may have another dtype or
   * live on another device. Modules use this to load weights and to change dtype or device while
   * layers keep their references to the tensor. It bypasses autograd; backward through an op that
   * used the old storage fails. The tensor owns the new storage from now on, so it leaves any
   * {@link MemoryScope}.
   */
  public void setStorage(Storage replacement) {
    if (replacement.size() != Shapes.numel(shape)) {
      throw new IllegalArgumentException(
          "storage of "
              + replacement.size()
              + " elements does not fit shape "
              + Shapes.format(shape));
    }
    replacement.leaveScope();
    this.storage = replacement;
    this.device = replacement.device();
    this.grad = null;
  }

  /**
   * Drops this tensor's reference to its storage, so any later use of this tensor fails. Closing
   * frees nothing by itself. The array or device block is freed when the {@link MemoryScope} that
   * owns the storage closes or backward releases it ({@link #isReleased()}), or else once no tensor
   * references the storage (views share it) and the garbage collector has run. To free temporaries
   * at a known point, run them in a scope.
   */
  @Override
  public void close() {
    storage = null;
    gradFn = null;
    grad = null;
  }
}
