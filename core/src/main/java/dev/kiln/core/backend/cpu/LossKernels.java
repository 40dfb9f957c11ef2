package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * CPU reference kernels for the regression losses. Each loss is a function f(d) of the difference
 * {@code d = x - t} between prediction and target, and each kernel returns the sum of f(d) over all
 * elements, accumulated in double precision for both dtypes.
 *
 * <p>When {@code grad} is not null, the same pass also writes {@code scale * f'(d)} to it. That is
 * the gradient with respect to x, and its negation is the gradient with respect to t. At the points
 * where f is not differentiable (d = 0 for L1 and Wing) the kernels use the derivative 0, as
 * PyTorch does. {@code x}, {@code t} and {@code grad} must have the same size and dtype, or the
 * kernels throw {@link IllegalArgumentException}.
 */
public final class LossKernels {
  private LossKernels() {}

  /** Sums the squared error f(d) = d² (the term of MSE). */
  public static double mse(Storage x, Storage t, Storage grad, double scale) {
    return run(new Squared(), x, t, grad, scale);
  }

  /** Sums the absolute error f(d) = |d|. */
  public static double l1(Storage x, Storage t, Storage grad, double scale) {
    return run(new Absolute(), x, t, grad, scale);
  }

  /**
   * Sums the smooth L1 loss, which is Huber's loss divided by beta: f(d) = 0.5·d²/β where |d| &lt;
   * β, else |d| − 0.5·β. With {@code beta} 0 it is L1, as in PyTorch. {@code beta} must be finite
   * and at least 0.
   */
  public static double smoothL1(Storage x, Storage t, double beta, Storage grad, double scale) {
    if (beta == 0) {
      return l1(x, t, grad, scale);
    }
    return run(new SmoothAbsolute(beta), x, t, grad, scale);
  }

  /**
   * Sums the Wing loss of Feng et al., "Wing Loss for Robust Facial Landmark Localisation with
   * Convolutional Neural Networks", CVPR 2018: f(d) = w·ln(1 + |d|/ε) where |d| &lt; w, else |d| −
   * C with C = w − w·ln(1 + w/ε), which makes the two pieces meet at |d| = w. {@code w} and {@code
   * epsilon} must be finite and greater than 0.
   */
  public static double wing(
      Storage x, Storage t, double w, double epsilon, Storage grad, double scale) {
    return run(new Wing(w, epsilon), x, t, grad, scale);
  }

  /** One loss as a function of d, with its derivative beside it. */
  private interface Pointwise {
    double value(double d);

    double derivative(double d);
  }

  private record Squared() implements Pointwise {
    @Override
    public double value(double d) {
      return d * d;
    }

    // f'(d) = 2d.
    @Override
    public double derivative(double d) {
      return 2 * d;
    }
  }

  private record Absolute() implements Pointwise {
    @Override
    public double value(double d) {
      return Math.abs(d);
    }

    // f'(d) = sign(d), with sign(0) = 0.
    @Override
    public double derivative(double d) {
      return Math.signum(d);
    }
  }

  private record SmoothAbsolute(double beta) implements Pointwise {
    @Override
    public double value(double d) {
      double magnitude = Math.abs(d);
      return magnitude < beta ? 0.5 * d * d / beta : magnitude - 0.5 * beta;
    }

    // f'(d) = d/β where |d| < β, else sign(d).
    @Override
    public double derivative(double d) {
      return Math.abs(d) < beta ? d / beta : Math.signum(d);
    }
  }

  private record Wing(double w, double epsilon, double offset) implements Pointwise {
    Wing(double w, double epsilon) {
      this(w, epsilon, w - w * Math.log1p(w / epsilon));
    }

    @Override
    public double value(double d) {
      double magnitude = Math.abs(d);
      return magnitude < w ? w * Math.log1p(magnitude / epsilon) : magnitude - offset;
    }

    // f'(d) = w·sign(d)/(ε + |d|) where |d| < w, else sign(d).
    @Override
    public double derivative(double d) {
      double magnitude = Math.abs(d);
      return magnitude < w ? w * Math.signum(d) / (epsilon + magnitude) : Math.signum(d);
    }
  }

  private static double run(Pointwise loss, Storage x, Storage t, Storage grad, double scale) {
    if (x.dtype() != t.dtype() || (grad != null && grad.dtype() != x.dtype())) {
      throw new IllegalArgumentException(
          "loss kernel: prediction, target and gradient must share a dtype, got "
              + x.dtype()
              + ", "
              + t.dtype()
              + " and "
              + (grad == null ? "no gradient" : grad.dtype()));
    }
    if (x.size() != t.size() || (grad != null && grad.size() != x.size())) {
      throw new IllegalArgumentException(
          "loss kernel: prediction, target and gradient must have the same size, got "
              + x.size()
              + ", "
              + t.size()
              + " and "
              + (grad == null ? "no gradient" : grad.size()));
    }

    return switch (x.dtype()) {
      case FLOAT64 ->
          runF64(loss, x.doubles(), t.doubles(), grad == null ? null : grad.doubles(), scale);
      case FLOAT32 ->
          runF32(loss, x.floats(), t.floats(), grad == null ? null : grad.floats(), scale);
    };
  }

  private static double runF64(
      Pointwise loss, double[] x, double[] t, double[] grad, double scale) {
    double sum = 0;
    for (int i = 0; i < x.length; i++) {
      double d = x[i] - t[i];
      sum += loss.value(d);
      if (grad != null) {
        grad[i] = scale * loss.derivative(d);
      }
    }
    return sum;
  }

  /** Computes d and f in double and rounds only the gradient to float. */
  private static double runF32(Pointwise loss, float[] x, float[] t, float[] grad, double scale) {
    double sum = 0;
    for (int i = 0; i < x.length; i++) {
      double d = (double) x[i] - t[i];
      sum += loss.value(d);
      if (grad != null) {
        grad[i] = (float) (scale * loss.derivative(d));
      }
    }
    return sum;
  }
}
