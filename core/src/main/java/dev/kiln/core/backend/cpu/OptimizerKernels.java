package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;

/**
 * Fused per-parameter update loops for SGD and Adam/AdamW, written against the raw arrays of {@link
 * Storage}. They are the CPU reference for the GPU kernels and follow the formulas of PyTorch
 * 1.13's single-tensor {@code torch.optim} implementations.
 *
 * <p>All storages passed to one call must have the same dtype and element count. Each element is
 * computed in double precision and rounded to float when stored to float32 storage, so float32
 * state (momentum buffers, moments) carries float32 rounding from step to step. The parameter
 * update then reads the rounded state, as PyTorch 1.13 does with its float32 state tensors.
 */
public final class OptimizerKernels {

  private OptimizerKernels() {}

  /** Settings of one SGD update, already validated by the caller. */
  public record SgdSettings(
      double learningRate,
      double momentum,
      double dampening,
      boolean nesterov,
      double weightDecay) {}

  /**
   * Settings of one Adam update, already validated by the caller. With {@code decoupledDecay} the
   * weight decay is AdamW's and shrinks the parameter. Without it, the decay is an L2 term added to
   * the gradient.
   */
  public record AdamSettings(
      double learningRate,
      double beta1,
      double beta2,
      double eps,
      double weightDecay,
      boolean decoupledDecay) {}

  /**
   * Applies one SGD step to {@code param} in place:
   *
   * <pre>
   * g = grad + weightDecay * param
   * b = g                                     on the first step (firstStep is true)
   * b = momentum * b + (1 - dampening) * g    afterwards
   * d = g + momentum * b  with nesterov,  d = b  without
   * param = param - learningRate * d
   * </pre>
   *
   * With momentum 0 there is no buffer: pass a null {@code momentumBuffer} and d = g. In float32, d
   * uses b as stored, rounded to float.
   */
  public static void sgdStep(
      SgdSettings settings,
      Storage param,
      Storage grad,
      Storage momentumBuffer,
      boolean firstStep) {
    requireMatching("grad", param, grad);
    if (momentumBuffer != null) {
      requireMatching("momentumBuffer", param, momentumBuffer);
    }

    double lr = settings.learningRate();
    double momentum = settings.momentum();
    double decay = settings.weightDecay();
    // Each loop computes in double: g with decay, then the buffer b, then the direction d. A zero
    // decay is skipped, as in PyTorch, so that an infinite parameter does not turn g into NaN.
    // The float32 loop computes d from the rounded buffer, as PyTorch 1.13 does.
    if (param.dtype() == DType.FLOAT32) {
      float[] p = param.floats();
      float[] grads = grad.floats();
      float[] b = momentumBuffer == null ? null : momentumBuffer.floats();
      forEachRange(
          p.length,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              double g = decay == 0.0 ? grads[i] : grads[i] + decay * p[i];
              double d = g;
              if (b != null) {
                b[i] = (float) (firstStep ? g : momentum * b[i] + (1.0 - settings.dampening()) * g);
                d = settings.nesterov() ? g + momentum * b[i] : b[i];
              }
              p[i] = (float) (p[i] - lr * d);
            }
          });
      return;
    }

    double[] p = param.doubles();
    double[] grads = grad.doubles();
    double[] b = momentumBuffer == null ? null : momentumBuffer.doubles();
    forEachRange(
        p.length,
        (chunk, start, end) -> {
          for (int i = start; i < end; i++) {
            double g = decay == 0.0 ? grads[i] : grads[i] + decay * p[i];
            double d = g;
            if (b != null) {
              double buffer = firstStep ? g : momentum * b[i] + (1.0 - settings.dampening()) * g;
              b[i] = buffer;
              d = settings.nesterov() ? g + momentum * buffer : buffer;
            }
            p[i] = p[i] - lr * d;
          }
        });
  }

  /**
   * Applies one Adam or AdamW step to {@code param} in place, where {@code step} is this
   * parameter's step count t, starting at 1:
   *
   * <pre>
   * g = grad + weightDecay * param                   Adam (L2 decay)
   * param = param * (1 - learningRate * weightDecay) AdamW (decoupled decay), before the update
   * m = beta1 * m + (1 - beta1) * g
   * v = beta2 * v + (1 - beta2) * g^2
   * param = param - (learningRate / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
   * </pre>
   */
  public static void adamStep(
      AdamSettings settings,
      long step,
      Storage param,
      Storage grad,
      Storage expAvg,
      Storage expAvgSq) {
    if (step < 1) {
      throw new IllegalArgumentException("Adam step count must be at least 1, got " + step);
    }
    requireMatching("grad", param, grad);
    requireMatching("expAvg", param, expAvg);
    requireMatching("expAvgSq", param, expAvgSq);

    double beta1 = settings.beta1();
    double beta2 = settings.beta2();
    double eps = settings.eps();
    // L2 decay adds l2 * param to the gradient, while decoupled decay scales the parameter by keep.
    double l2 = settings.decoupledDecay() ? 0.0 : settings.weightDecay();
    double keep =
        settings.decoupledDecay() ? 1.0 - settings.learningRate() * settings.weightDecay() : 1.0;
    double stepSize = settings.learningRate() / (1.0 - Math.pow(beta1, step));
    double biasCorrection2Sqrt = Math.sqrt(1.0 - Math.pow(beta2, step));

    if (param.dtype() == DType.FLOAT32) {
      float[] p = param.floats();
      float[] grads = grad.floats();
      float[] m = expAvg.floats();
      float[] v = expAvgSq.floats();
      forEachRange(
          p.length,
          (chunk, start, end) -> {
            for (int i = start; i < end; i++) {
              double g = l2 == 0.0 ? grads[i] : grads[i] + l2 * p[i];
              m[i] = (float) (beta1 * m[i] + (1.0 - beta1) * g);
              v[i] = (float) (beta2 * v[i] + (1.0 - beta2) * g * g);
              double denominator = Math.sqrt(v[i]) / biasCorrection2Sqrt + eps;
              p[i] = (float) (p[i] * keep - stepSize * m[i] / denominator);
            }
          });
      return;
    }

    double[] p = param.doubles();
    double[] grads = grad.doubles();
    double[] m = expAvg.doubles();
    double[] v = expAvgSq.doubles();
    forEachRange(
        p.length,
        (chunk, start, end) -> {
          for (int i = start; i < end; i++) {
            double g = l2 == 0.0 ? grads[i] : grads[i] + l2 * p[i];
            m[i] = beta1 * m[i] + (1.0 - beta1) * g;
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
            double denominator = Math.sqrt(v[i]) / biasCorrection2Sqrt + eps;
            p[i] = p[i] * keep - stepSize * m[i] / denominator;
          }
        });
  }

  /**
   * Runs {@code loop} over [0, size): on the calling thread for a small parameter, else split over
   * the pool. Every element's update reads and writes only its own index, so the split never
   * changes a result.
   */
  private static void forEachRange(int size, CpuParallel.RangeBody loop) {
    CpuParallel.forEachChunk(size, size, ElementwiseKernels.PARALLEL_MIN_ELEMENTS, loop);
  }

  private static void requireMatching(String name, Storage param, Storage other) {
    if (other.dtype() != param.dtype() || other.size() != param.size()) {
      throw new IllegalArgumentException(
          name
              + " is "
              + other.dtype()
              + " with "
              + other.size()
              + " elements but the parameter is "
              + param.dtype()
              + " with "
              + param.size()
              + "; optimizer state and gradients must match their parameter");
    }
  }
}
