package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.LossKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceLosses;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.Arrays;
import java.util.Objects;

/**
 * Regression losses between a prediction x and a target t of the same shape, each computed by one
 * fused kernel and recorded as one autograd node.
 *
 * <p>Every loss is a sum or mean over the elements of f(x − t), returned as a zero-dimensional
 * tensor (shape {@code []}, as in PyTorch) of the inputs' dtype. The backward pass returns
 * gradients for both inputs, and the target's is the negation of the prediction's, so a target that
 * requires a gradient receives one. Unlike PyTorch, the losses do not broadcast: the shapes must be
 * equal.
 */
public final class LossOps {
  private LossOps() {}

  /** The fused kernel behind one loss: returns the summed loss and fills {@code grad} if given. */
  @FunctionalInterface
  private interface Kernel {
    double run(Storage x, Storage t, Storage grad, double scale);
  }

  /**
   * The same loss on a device: writes the reduced loss to {@code loss[0]} and, where {@code grad}
   * is non-null, the gradient of that reduced loss.
   */
  @FunctionalInterface
  private interface DeviceKernel {
    void run(
        DeviceLosses losses,
        DeviceBuffer x,
        DeviceBuffer t,
        int n,
        Reduction reduction,
        DeviceBuffer loss,
        DeviceBuffer grad);
  }

  /** Mean squared error, the reduction of (x − t)². Its derivative in x is 2(x − t). */
  public static Tensor mseLoss(Tensor x, Tensor t, Reduction reduction) {
    return apply("mseLoss", x, t, reduction, LossKernels::mse, DeviceLosses::mse);
  }

  /** L1 loss, the reduction of |x − t|. Its derivative in x is sign(x − t), 0 where x == t. */
  public static Tensor l1Loss(Tensor x, Tensor t, Reduction reduction) {
    return apply("l1Loss", x, t, reduction, LossKernels::l1, DeviceLosses::l1);
  }

  /**
   * Smooth L1 loss: 0.5·d²/β where |d| &lt; β, else |d| − 0.5·β, with d = x − t. Its derivative in
   * x is d/β inside the band and sign(d) outside. A {@code beta} of 0 gives L1, as in PyTorch.
   *
   * <p>NOTE: with a {@code beta} of 0, the derivative where x == t is 0, as L1's is. PyTorch 1.13's
   * smooth_l1_loss gives −1 there instead (−1/n with the mean reduction).
   *
   * @throws IllegalArgumentException if {@code beta} is negative, infinite or NaN
   */
  public static Tensor smoothL1Loss(Tensor x, Tensor t, double beta, Reduction reduction) {
    requireValidBeta(beta);
    return apply(
        "smoothL1Loss",
        x,
        t,
        reduction,
        (xs, ts, grad, scale) -> LossKernels.smoothL1(xs, ts, beta, grad, scale),
        (losses, xs, ts, n, r, loss, grad) -> losses.smoothL1(xs, ts, n, beta, r, loss, grad));
  }

  /**
   * Wing loss (Feng et al., CVPR 2018): w·ln(1 + |d|/ε) where |d| &lt; w, else |d| − C with C = w −
   * w·ln(1 + w/ε), and d = x − t. Its derivative in x is w·sign(d)/(ε + |d|) inside the band and
   * sign(d) outside. The paper's defaults, w = 10 and ε = 2, are in pixels: w and ε are in the
   * units of the targets.
   *
   * @throws IllegalArgumentException if {@code w} or {@code epsilon} is not a finite number above 0
   */
  public static Tensor wingLoss(Tensor x, Tensor t, double w, double epsilon, Reduction reduction) {
    requireValidWing(w, epsilon);
    return apply(
        "wingLoss",
        x,
        t,
        reduction,
        (xs, ts, grad, scale) -> LossKernels.wing(xs, ts, w, epsilon, grad, scale),
        (losses, xs, ts, n, r, loss, grad) -> losses.wing(xs, ts, n, w, epsilon, r, loss, grad));
  }

  /** Throws {@link IllegalArgumentException} unless {@code beta} is finite and at least 0. */
  public static void requireValidBeta(double beta) {
    if (!(beta >= 0) || Double.isInfinite(beta)) {
      throw new IllegalArgumentException(
          "smoothL1Loss: beta is "
              + beta
              + " but must be a finite number >= 0 (1.0 is PyTorch's default; 0 gives L1)");
    }
  }

  /**
   * Throws {@link IllegalArgumentException} unless {@code w} and {@code epsilon} are finite and
   * greater than 0.
   */
  public static void requireValidWing(double w, double epsilon) {
    if (!(w > 0) || Double.isInfinite(w)) {
      throw new IllegalArgumentException(
          "wingLoss: w is " + w + " but must be a finite number > 0 (the paper uses 10)");
    }
    if (!(epsilon > 0) || Double.isInfinite(epsilon)) {
      throw new IllegalArgumentException(
          "wingLoss: epsilon is "
              + epsilon
              + " but must be a finite number > 0 (the paper uses 2)");
    }
  }

  /** Checks the operands, runs the kernel for the value and records the backward. */
  private static Tensor apply(
      String name,
      Tensor x,
      Tensor t,
      Reduction reduction,
      Kernel kernel,
      DeviceKernel deviceKernel) {
    Objects.requireNonNull(
        reduction, () -> name + ": reduction is null: pass Reduction.MEAN or Reduction.SUM");
    Checks.sameDTypeAndDevice(name, x, t);
    requireSameShape(name, x, t);
    if (!x.device().isCpu()) {
      return onDevice(name, x, t, reduction, deviceKernel);
    }

    // A mean divides by the element count: 0/0 gives NaN for an empty input, as PyTorch does.
    double divisor = reduction == Reduction.MEAN ? x.numel() : 1.0;
    double sum = kernel.run(x.storage(), t.storage(), null, 1.0);
    Storage value = Storage.allocate(x.dtype(), 1);
    value.set(0, sum / divisor);
    Tensor out = new Tensor(value, new int[0], x.device());

    // The backward reruns the kernel so that the forward pass keeps no gradient buffer alive. It
    // reads x and t then, so neither may change in place between this call and backward().
    return Autograd.record(
        name,
        out,
        g -> {
          Tensor gradX = Tensor.zerosLike(x);
          kernel.run(x.storage(), t.storage(), gradX.storage(), g.item() / divisor);
          Tensor gradT = t.requiresGrad() ? Elementwise.map(UnaryOp.NEG, gradX, 0, 0) : null;
          return new Tensor[] {x.requiresGrad() ? gradX : null, gradT};
        },
        x,
        t);
  }

  /**
   * Runs a loss on a device. The loss stays there as a scalar tensor, so the forward pass does not
   * wait for the device. As on the CPU, the backward pass reruns the kernel, this time with a
   * gradient buffer and no loss buffer, and scales that gradient by the upstream gradient, itself a
   * device scalar.
   */
  private static Tensor onDevice(
      String name, Tensor x, Tensor t, Reduction reduction, DeviceKernel kernel) {
    if (x.numel() == 0) {
      return emptyOnDevice(name, x, t, reduction);
    }
    DeviceLosses losses = kernelsOf(x).losses();
    Tensor out = Tensor.empty(x.dtype(), x.device());
    kernel.run(losses, bufferOf(x), bufferOf(t), x.numel(), reduction, bufferOf(out), null);
    return Autograd.record(
        name,
        out,
        g -> {
          // Without a loss buffer, the kernel writes the gradient and skips reducing the value.
          Tensor unscaled = Tensor.emptyLike(x);
          kernel.run(
              losses, bufferOf(x), bufferOf(t), x.numel(), reduction, null, bufferOf(unscaled));
          Tensor gradX = Elementwise.zip(name, BinaryOp.MUL, unscaled, g);
          Tensor gradT = t.requiresGrad() ? Elementwise.map(UnaryOp.NEG, gradX, 0, 0) : null;
          return new Tensor[] {x.requiresGrad() ? gradX : null, gradT};
        },
        x,
        t);
  }

  /**
   * Records a loss of empty tensors on a device, where the kernels need at least one element. As on
   * the CPU and in PyTorch 1.13, the mean is NaN (0/0) and the sum is 0, and both gradients are
   * empty.
   */
  private static Tensor emptyOnDevice(String name, Tensor x, Tensor t, Reduction reduction) {
    double value = reduction == Reduction.MEAN ? Double.NaN : 0.0;
    return ZeroGradients.record(name, Tensor.scalar(value, x.dtype()).to(x.device()), x, t);
  }

  private static void requireSameShape(String name, Tensor x, Tensor t) {
    int[] xShape = x.shape();
    int[] tShape = t.shape();
    if (Arrays.equals(xShape, tShape)) {
      return;
    }

    String hint;
    if (x.numel() == t.numel()) {
      hint = "reshape the target to match";
    } else {
      hint =
          "they hold "
              + x.numel()
              + " and "
              + t.numel()
              + " elements, so check that both come from the same batch. Losses do not"
              + " broadcast, so expand the target first if that was intended";
    }
    throw new IllegalArgumentException(
        name
            + ": prediction "
            + Shapes.format(xShape)
            + " and target "
            + Shapes.format(tShape)
            + " differ: "
            + hint);
  }
}
