package dev.kiln.nn.loss;

import dev.kiln.core.ops.LossOps;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Tensor;
import java.util.Objects;

/**
 * Smooth L1 loss, like PyTorch's {@code SmoothL1Loss}: quadratic for |x − t| &lt; beta and linear
 * beyond, so outliers pull less than with MSE. A beta of 0 gives L1.
 *
 * <p>Beta is in the units of the targets. With targets scaled to about [-1, 1], as the keypoint
 * trainer scales them, nearly every error is below the default beta of 1, so the loss is half the
 * squared error there. Without weight decay, Adam ignores a constant factor of the loss (up to its
 * epsilon), so it then trains like MSE. A beta near the typical error gives the mix of both.
 *
 * @param beta width of the quadratic band in the prediction's units, finite and at least 0
 */
public record SmoothL1Loss(double beta, Reduction reduction) implements Loss {

  /** PyTorch's default beta. */
  public static final double DEFAULT_BETA = 1.0;

  /** Creates the loss, checking beta now rather than at the first call. */
  public SmoothL1Loss {
    LossOps.requireValidBeta(beta);
    Objects.requireNonNull(reduction, "reduction is null: pass Reduction.MEAN or Reduction.SUM");
  }

  /** Creates the loss with mean reduction. */
  public SmoothL1Loss(double beta) {
    this(beta, Reduction.MEAN);
  }

  /** Creates the loss with beta 1 and mean reduction. */
  public SmoothL1Loss() {
    this(DEFAULT_BETA);
  }

  @Override
  public Tensor compute(Tensor prediction, Tensor target) {
    return LossOps.smoothL1Loss(prediction, target, beta, reduction);
  }

  @Override
  public String name() {
    return "smoothl1";
  }

  @Override
  public String toString() {
    return "SmoothL1Loss(beta=" + beta + ", reduction=" + reduction + ")";
  }
}
