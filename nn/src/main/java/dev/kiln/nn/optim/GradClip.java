package dev.kiln.nn.optim;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import java.util.function.UnaryOperator;

/**
 * Gradient clipping, as PyTorch's {@code clip_grad_norm_} and {@code clip_grad_value_}. Both
 * replace each gradient with a clipped copy through {@link Tensor#setGrad}, so a gradient tensor
 * that other code still references is left unchanged. Parameters without a gradient are skipped.
 *
 * <p>One difference from PyTorch 1.13: there, with the default {@code error_if_nonfinite=False}, an
 * infinite total norm scales the gradients by 0, so finite gradients become 0 and infinite ones
 * NaN, and a NaN total norm makes every gradient NaN. Here {@link #clipGradNorm} raises an
 * exception instead, because the step would spoil the weights.
 *
 * <p>Gradients on the CPU are read element by element in double precision. Gradients on another
 * device stay there: their squares are summed and their copies are made by tensor ops on that
 * device, in float32, and only one number per device comes back to the host.
 */
public final class GradClip {
  /** Added to the total norm in the scale factor, as in PyTorch, to avoid dividing by zero. */
  private static final double NORM_EPS = 1e-6;

  private GradClip() {}

  /**
   * Scales all gradients together so that their total 2-norm is at most {@code maxNorm}: when the
   * factor maxNorm / (totalNorm + 1e-6) is below 1, every gradient is multiplied by it.
   *
   * @return the total 2-norm of the gradients before clipping, over all parameters
   * @throws IllegalArgumentException if {@code maxNorm} is negative or NaN
   * @throws IllegalStateException if the total norm is NaN or infinite
   */
  public static double clipGradNorm(List<Tensor> params, double maxNorm) {
    if (!(maxNorm >= 0)) {
      throw new IllegalArgumentException("clipGradNorm: maxNorm must be >= 0, got " + maxNorm);
    }

    double totalNorm = Math.sqrt(sumOfSquares(params));
    if (!Double.isFinite(totalNorm)) {
      throw new IllegalStateException(
          "clipGradNorm: the total gradient norm is "
              + totalNorm
              + ", so the gradients have blown up or the loss is NaN; lower the learning rate or"
              + " check the loss and inputs for NaN or infinity");
    }

    double scale = maxNorm / (totalNorm + NORM_EPS);
    if (scale < 1) {
      for (Tensor param : params) {
        if (param.grad() != null) {
          param.setGrad(transformed(param.grad(), value -> value * scale, grad -> grad.mul(scale)));
        }
      }
    }
    return totalNorm;
  }

  /**
   * Clamps every gradient element to [-clipValue, clipValue].
   *
   * @throws IllegalArgumentException if {@code clipValue} is negative or NaN
   */
  public static void clipGradValue(List<Tensor> params, double clipValue) {
    if (!(clipValue >= 0)) {
      throw new IllegalArgumentException("clipGradValue: clipValue must be >= 0, got " + clipValue);
    }

    for (Tensor param : params) {
      if (param.grad() != null) {
        param.setGrad(
            transformed(
                param.grad(),
                value -> Math.max(-clipValue, Math.min(clipValue, value)),
                grad -> grad.clamp(-clipValue, clipValue)));
      }
    }
  }

  /**
   * Returns the sum of the squared elements of all gradients. Each device's part is summed there
   * into one scalar tensor, so reading it back costs one transfer per device, not one per tensor.
   */
  private static double sumOfSquares(List<Tensor> params) {
    double sum = 0;
    Map<Device, Tensor> deviceSums = new LinkedHashMap<>();
    try (var _ = GradMode.noGrad()) {
      for (Tensor param : params) {
        Tensor grad = param.grad();
        if (grad == null) {
          continue;
        }
        if (grad.device().isCpu()) {
          Storage values = grad.storage();
          for (int i = 0; i < values.size(); i++) {
            double value = values.get(i);
            sum += value * value;
          }
        } else {
          // NOTE: float32 on the device, so a gradient element beyond about 1.8e19 squares to
          // infinity here, where the CPU's double sum would stay finite.
          deviceSums.merge(grad.device(), grad.mul(grad).sum(), Tensor::add);
        }
      }
    }
    for (Tensor deviceSum : deviceSums.values()) {
      sum += deviceSum.item();
    }
    return sum;
  }

  /**
   * Returns a new tensor, without graph, holding {@code function} of each element of grad. A
   * gradient on a device other than the CPU gets {@code onDevice} instead, a tensor op that
   * computes the same function there.
   */
  private static Tensor transformed(
      Tensor grad, DoubleUnaryOperator function, UnaryOperator<Tensor> onDevice) {
    if (!grad.device().isCpu()) {
      try (var _ = GradMode.noGrad()) {
        return onDevice.apply(grad.detach());
      }
    }
    Storage values = grad.storage().copy();
    for (int i = 0; i < values.size(); i++) {
      values.set(i, function.applyAsDouble(values.get(i)));
    }
    return new Tensor(values, grad.shape(), grad.device());
  }
}
