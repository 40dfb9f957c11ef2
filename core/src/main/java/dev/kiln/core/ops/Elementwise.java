package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.ElementwiseKernels;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;

/**
 * Elementwise arithmetic and math functions, with their backward passes beside them.
 *
 * <p>Each op computes through {@link #map} or {@link #zip}, which run the CPU kernels for tensors
 * in Java arrays and the device kernels for tensors on a GPU or the emulated device. Apart from the
 * fused backward of {@link #relu}, which branches the same way, that is the whole of the device
 * dispatch here. The autograd recipes are the same on every device.
 */
public final class Elementwise {
  private Elementwise() {}

  /** Applies a unary op without recording it; backward passes build on this. */
  public static Tensor map(UnaryOp op, Tensor x, double a, double b) {
    Tensor out = Tensor.emptyLike(x);
    if (x.device().isCpu()) {
      ElementwiseKernels.unary(op, a, b, x.storage(), out.storage());
    } else {
      kernelsOf(x).elementwise().unary(op, a, b, bufferOf(x), bufferOf(out), x.numel());
    }
    return out;
  }

  /** Applies a binary op with broadcasting, without recording it. */
  public static Tensor zip(String name, BinaryOp op, Tensor x, Tensor y) {
    Checks.sameDTypeAndDevice(name, x, y);
    int[] outShape = Broadcast.shape(name, x.shape(), y.shape());
    Tensor out = Tensor.empty(x.dtype(), x.device(), outShape);
    int[] xShape = Broadcast.alignRank(x.shape(), outShape.length);
    int[] yShape = Broadcast.alignRank(y.shape(), outShape.length);
    if (x.device().isCpu()) {
      ElementwiseKernels.binary(
          op, x.storage(), xShape, y.storage(), yShape, out.storage(), outShape);
    } else {
      kernelsOf(x)
          .elementwise()
          .binaryBroadcast(op, bufferOf(x), xShape, bufferOf(y), yShape, bufferOf(out), outShape);
    }
    return out;
  }

  // ---- Binary arithmetic -----------------------------------------------------------------------

  public static Tensor add(Tensor x, Tensor y) {
    Tensor out = zip("add", BinaryOp.ADD, x, y);
    // Backward needs only the shapes, so it saves those and lets the inputs be freed.
    int[] xShape = x.shape();
    int[] yShape = y.shape();
    return Autograd.record(
        "add",
        out,
        g -> new Tensor[] {Broadcast.reduceTo(g, xShape), Broadcast.reduceTo(g, yShape)},
        x,
        y);
  }

  public static Tensor sub(Tensor x, Tensor y) {
    Tensor out = zip("sub", BinaryOp.SUB, x, y);
    int[] xShape = x.shape();
    int[] yShape = y.shape();
    return Autograd.record(
        "sub",
        out,
        g -> new Tensor[] {Broadcast.reduceTo(g, xShape), Broadcast.reduceTo(g.neg(), yShape)},
        x,
        y);
  }

  public static Tensor mul(Tensor x, Tensor y) {
    Tensor out = zip("mul", BinaryOp.MUL, x, y);
    return Autograd.record(
        "mul",
        out,
        g ->
            new Tensor[] {
              x.requiresGrad() ? Broadcast.reduceTo(g.mul(y), x.shape()) : null,
              y.requiresGrad() ? Broadcast.reduceTo(g.mul(x), y.shape()) : null
            },
        x,
        y);
  }

  /** x / y; the gradient for y is -g * x / y^2. */
  public static Tensor div(Tensor x, Tensor y) {
    Tensor out = zip("div", BinaryOp.DIV, x, y);
    return Autograd.record(
        "div",
        out,
        g ->
            new Tensor[] {
              x.requiresGrad() ? Broadcast.reduceTo(g.div(y), x.shape()) : null,
              y.requiresGrad() ? Broadcast.reduceTo(g.mul(out).div(y).neg(), y.shape()) : null
            },
        x,
        y);
  }

  /** Elementwise maximum; where x == y the gradient goes to x, a choice PyTorch splits. */
  public static Tensor maximum(Tensor x, Tensor y) {
    Tensor out = zip("maximum", BinaryOp.MAXIMUM, x, y);
    return Autograd.record(
        "maximum",
        out,
        g -> {
          Tensor yWins = zip("maximum", BinaryOp.GREATER, y, x);
          Tensor xWins = map(UnaryOp.ADD_SCALAR, map(UnaryOp.NEG, yWins, 0, 0), 1, 0);
          return new Tensor[] {
            Broadcast.reduceTo(g.mul(xWins), x.shape()), Broadcast.reduceTo(g.mul(yWins), y.shape())
          };
        },
        x,
        y);
  }

  // ---- Unary functions -------------------------------------------------------------------------

  /**
   * Applies a unary op whose derivative is {@code gradOp} evaluated at the input, e.g. {@code relu}
   * with {@code RELU_GRAD}.
   */
  static Tensor unaryWithInputGrad(
      String name, UnaryOp op, UnaryOp gradOp, Tensor x, double a, double b) {
    Tensor out = map(op, x, a, b);
    return Autograd.record(name, out, g -> new Tensor[] {g.mul(map(gradOp, x, a, b))}, x);
  }

  /** Like {@link #unaryWithInputGrad} but the derivative is a function of the output. */
  static Tensor unaryWithOutputGrad(String name, UnaryOp op, UnaryOp gradOp, Tensor x) {
    Tensor out = map(op, x, 0, 0);
    return Autograd.record(name, out, g -> new Tensor[] {g.mul(map(gradOp, out, 0, 0))}, x);
  }

  public static Tensor neg(Tensor x) {
    return Autograd.record("neg", map(UnaryOp.NEG, x, 0, 0), g -> new Tensor[] {g.neg()}, x);
  }

  public static Tensor addScalar(Tensor x, double value) {
    return Autograd.record(
        "addScalar", map(UnaryOp.ADD_SCALAR, x, value, 0), g -> new Tensor[] {g}, x);
  }

  public static Tensor mulScalar(Tensor x, double value) {
    return Autograd.record(
        "mulScalar", map(UnaryOp.MUL_SCALAR, x, value, 0), g -> new Tensor[] {g.mul(value)}, x);
  }

  /** e^x; the gradient is g * e^x, reusing the output. */
  public static Tensor exp(Tensor x) {
    Tensor out = map(UnaryOp.EXP, x, 0, 0);
    return Autograd.record("exp", out, g -> new Tensor[] {g.mul(out)}, x);
  }

  /** Natural logarithm; the gradient is g / x. */
  public static Tensor log(Tensor x) {
    return Autograd.record("log", map(UnaryOp.LOG, x, 0, 0), g -> new Tensor[] {g.div(x)}, x);
  }

  /** Square root; the gradient is g / (2 sqrt(x)). */
  public static Tensor sqrt(Tensor x) {
    Tensor out = map(UnaryOp.SQRT, x, 0, 0);
    return Autograd.record("sqrt", out, g -> new Tensor[] {g.div(out).mul(0.5)}, x);
  }

  /**
   * x^p; the gradient is g * p * x^(p-1), and 0 for p = 0, where the formula would give 0 * inf =
   * NaN at x = 0.
   */
  public static Tensor pow(Tensor x, double p) {
    Tensor out = map(UnaryOp.POW, x, p, 0);
    return Autograd.record(
        "pow",
        out,
        g ->
            new Tensor[] {
              p == 0 ? Tensor.zerosLike(x) : g.mul(map(UnaryOp.POW, x, p - 1, 0)).mul(p)
            },
        x);
  }

  /** |x|; the gradient is g * sign(x), which is 0 at 0. */
  public static Tensor abs(Tensor x) {
    return unaryWithInputGrad("abs", UnaryOp.ABS, UnaryOp.SIGN, x, 0, 0);
  }

  /** Limits values to [min, max]; the gradient passes only where the value was inside. */
  public static Tensor clamp(Tensor x, double min, double max) {
    if (min > max) {
      throw new IllegalArgumentException("clamp: min " + min + " is greater than max " + max);
    }
    Tensor out = map(UnaryOp.CLAMP, x, min, max);
    return Autograd.record(
        "clamp", out, g -> new Tensor[] {g.mul(map(UnaryOp.CLAMP_GRAD, x, min, max))}, x);
  }

  // ---- Activations -----------------------------------------------------------------------------

  /**
   * max(x, 0); the gradient is {@code x <= 0 ? 0 : g}, computed in one fused kernel. It selects
   * instead of multiplying by the {@code RELU_GRAD} mask, as PyTorch's {@code threshold_backward}
   * does, so a NaN or infinite g stops at an input of at most 0, and a NaN input passes g on.
   */
  public static Tensor relu(Tensor x) {
    Tensor out = map(UnaryOp.RELU, x, 0, 0);
    return Autograd.record(
        "relu",
        out,
        g -> {
          Checks.sameDTypeAndDevice("relu", g, x);
          Tensor gradInput = Tensor.emptyLike(x);
          if (x.device().isCpu()) {
            ElementwiseKernels.reluBackward(g.storage(), x.storage(), gradInput.storage());
          } else {
            kernelsOf(x)
                .elementwise()
                .unaryBackward(
                    UnaryOp.RELU_GRAD,
                    0,
                    0,
                    bufferOf(g),
                    bufferOf(x),
                    bufferOf(gradInput),
                    x.numel());
          }
          return new Tensor[] {gradInput};
        },
        x);
  }

  public static Tensor leakyRelu(Tensor x, double negativeSlope) {
    return unaryWithInputGrad(
        "leakyRelu", UnaryOp.LEAKY_RELU, UnaryOp.LEAKY_RELU_GRAD, x, negativeSlope, 0);
  }

  public static Tensor elu(Tensor x, double alpha) {
    return unaryWithInputGrad("elu", UnaryOp.ELU, UnaryOp.ELU_GRAD, x, alpha, 0);
  }

  public static Tensor tanh(Tensor x) {
    return unaryWithOutputGrad("tanh", UnaryOp.TANH, UnaryOp.TANH_GRAD, x);
  }

  public static Tensor sigmoid(Tensor x) {
    return unaryWithOutputGrad("sigmoid", UnaryOp.SIGMOID, UnaryOp.SIGMOID_GRAD, x);
  }

  /** Returns a copy with its own storage, recorded as an identity op. */
  public static Tensor copy(Tensor x) {
    Tensor out = new Tensor(x.storage().copy(), x.shape(), x.device());
    return Autograd.record("copy", out, g -> new Tensor[] {g}, x);
  }

  /** Converts to another dtype; the gradient converts back. */
  public static Tensor toDType(Tensor x, DType dtype) {
    if (x.dtype() == dtype) {
      return x;
    }
    if (!x.device().isCpu()) {
      throw new IllegalArgumentException(
          "to("
              + dtype
              + "): "
              + x.device()
              + " stores only float32 tensors: move the tensor to the CPU with to(Device.CPU)"
              + " first");
    }
    Storage storage = Storage.allocate(dtype, x.numel());
    for (int i = 0; i < x.numel(); i++) {
      storage.set(i, x.storage().get(i));
    }
    Tensor out = new Tensor(storage, x.shape(), x.device());
    DType source = x.dtype();
    return Autograd.record("to", out, g -> new Tensor[] {toDType(g, source)}, x);
  }
}
