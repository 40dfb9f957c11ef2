package dev.kiln.nn.loss;

import dev.kiln.core.ops.LossOps;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Tensor;
import java.util.Objects;

/**
 * Wing loss for landmark regression (Feng et al., "Wing Loss for Robust Facial Landmark
 * Localisation with Convolutional Neural Networks", CVPR 2018): logarithmic for |x − t| &lt; w, so
 * small and medium errors keep a large gradient, and linear beyond.
 *
 * <p>w and epsilon are in the units of the targets. The paper's defaults of 10 and 2 are pixels.
 * With targets scaled to about [-1, 1], as the keypoint trainer scales them, every error is inside
 * the band of width 10. For errors up to 1, the gradient 10 / (2 + |d|) only falls from 5 to 3.3,
 * so the loss behaves much like L1. For a crop of S pixels, 10 and 2 pixels are 20 / S and 4 / S in
 * those units.
 *
 * @param w width of the logarithmic band in the prediction's units, finite and above 0
 * @param epsilon curvature of the logarithmic band (smaller is sharper), finite and above 0
 */
public record WingLoss(double w, double epsilon, Reduction reduction) implements Loss {

  /** The paper's default w. */
  public static final double DEFAULT_W = 10.0;

  /** The paper's default epsilon. */
  public static final double DEFAULT_EPSILON = 2.0;

  /** Creates the loss, checking w and epsilon now rather than at the first call. */
  public WingLoss {
    LossOps.requireValidWing(w, epsilon);
    Objects.requireNonNull(reduction, "reduction is null: pass Reduction.MEAN or Reduction.SUM");
  }

  /** Creates the loss with mean reduction. */
  public WingLoss(double w, double epsilon) {
    this(w, epsilon, Reduction.MEAN);
  }

  /** Creates the loss with w 10, epsilon 2 and mean reduction. */
  public WingLoss() {
    this(DEFAULT_W, DEFAULT_EPSILON);
  }

  @Override
  public Tensor compute(Tensor prediction, Tensor target) {
    return LossOps.wingLoss(prediction, target, w, epsilon, reduction);
  }

  @Override
  public String name() {
    return "wing";
  }

  @Override
  public String toString() {
    return "WingLoss(w=" + w + ", epsilon=" + epsilon + ", reduction=" + reduction + ")";
  }
}
