package dev.kiln.nn.optim;

import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.function.DoubleUnaryOperator;

/**
 * Gradient clipping, as PyTorch's {@code clip_grad_norm_} and {@code clip_grad_value_}. Both
 * replace each gradient with a clipped copy through {@link Tensor#setGrad}, so a gradient tensor
 * that other code still references is left unchanged. Parameters without a gradient are skipped.
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

    double sumOfSquares = 0;
    for (Tensor param : params) {
      Tensor grad = param.grad();
      if (grad == null) {
        continue;
      }
      Storage values = grad.storage();
      for (int i = 0; i < values.size(); i++) {
        double value = values.get(i);
        sumOfSquares += value * value;
      }
    }
    double totalNorm = Math.sqrt(sumOfSquares);
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
          param.setGrad(transformed(param.grad(), value -> value * scale));
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
            transformed(param.grad(), value -> Math.max(-clipValue, Math.min(clipValue, value))));
      }
    }
  }

  /** Returns a new tensor, without graph, holding {@code function} of each element of grad. */
  private static Tensor transformed(Tensor grad, DoubleUnaryOperator function) {
    Storage values = grad.storage().copy();
    for (int i = 0; i < values.size(); i++) {
      values.set(i, function.applyAsDouble(values.get(i)));
    }
    return new Tensor(values, grad.shape(), grad.device());
  }
}
