package dev.kiln.nn.layers;

import dev.kiln.core.ops.Normalization;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/**
 * Batch normalization over dimension 1, shared by {@link BatchNorm1d} and {@link BatchNorm2d}.
 * Training mode normalizes with the batch's statistics and updates the running ones; evaluation
 * mode uses the running statistics.
 *
 * <p>The conventions are PyTorch's. The batch is normalized with its biased variance (divided by
 * the number of values m), and the running variance is updated with the unbiased one (divided by m
 * - 1). The update is running = (1 - momentum) * running + momentum * batch, so a momentum of 0.1
 * moves a tenth of the way to the batch statistic: Keras's momentum of 0.99 is this momentum of
 * 0.01. A layer built without running statistics uses the batch statistics in both modes.
 */
public abstract class BatchNorm extends Module {
  private final int numFeatures;
  private final double eps;
  private final double momentum;
  private final Tensor weight;
  private final Tensor bias;
  private final Tensor runningMean;
  private final Tensor runningVar;

  /**
   * @param affine learn a scale (weight, starting at 1) and shift (bias, starting at 0)
   * @param trackRunningStats keep running statistics for evaluation
   */
  protected BatchNorm(
      int numFeatures,
      double eps,
      double momentum,
      boolean affine,
      boolean trackRunningStats,
      DType dtype) {
    if (numFeatures <= 0) {
      throw new IllegalArgumentException("numFeatures must be positive, got " + numFeatures);
    }
    if (!(eps > 0)) {
      throw new IllegalArgumentException("eps must be positive, got " + eps);
    }
    if (!(momentum >= 0 && momentum <= 1)) {
      throw new IllegalArgumentException("momentum must be in [0, 1], got " + momentum);
    }
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    this.weight = affine ? registerParameter("weight", Tensor.ones(dtype, numFeatures)) : null;
    this.bias = affine ? registerParameter("bias", Tensor.zeros(dtype, numFeatures)) : null;
    this.runningMean =
        trackRunningStats ? registerBuffer("running_mean", Tensor.zeros(dtype, numFeatures)) : null;
    this.runningVar =
        trackRunningStats ? registerBuffer("running_var", Tensor.ones(dtype, numFeatures)) : null;
  }

  /** Throws unless the input has a shape this layer accepts; the message shows the shape. */
  protected abstract void checkInput(Tensor input);

  @Override
  public Tensor forward(Tensor input) {
    checkInput(input);
    if (input.size(1) != numFeatures) {
      throw new IllegalArgumentException(
          getClass().getSimpleName()
              + "("
              + numFeatures
              + ") got input of shape "
              + Shapes.format(input.shape())
              + " with "
              + input.size(1)
              + " channels in dimension 1");
    }
    boolean useBatchStatistics = isTraining() || runningMean == null;
    return Normalization.batchNorm(
        input, runningMean, runningVar, weight, bias, useBatchStatistics, momentum, eps);
  }

  public Tensor weight() {
    return weight;
  }

  public Tensor bias() {
    return bias;
  }

  public Tensor runningMean() {
    return runningMean;
  }

  public Tensor runningVar() {
    return runningVar;
  }

  @Override
  protected String extraRepr() {
    return numFeatures
        + ", eps="
        + eps
        + ", momentum="
        + momentum
        + ", affine="
        + (weight != null ? "True" : "False")
        + ", track_running_stats="
        + (runningMean != null ? "True" : "False");
  }
}
