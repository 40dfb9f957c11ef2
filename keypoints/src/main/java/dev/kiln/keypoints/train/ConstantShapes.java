package dev.kiln.keypoints.train;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.loss.Loss;
import java.util.List;

/**
 * The constant shapes that a model which ignores the image learns from training targets: their
 * mean, the best constant under MSE, and their per-coordinate median, the best under L1. A model
 * has learned something from the images only once it beats both, because which of them scores lower
 * depends on the loss and on the faces it is scored on.
 *
 * <p>The best constant under SmoothL1 lies between the two, and under wing loss near the median.
 * Those minimizers were fitted per coordinate to one augmented epoch of the full facial-keypoints
 * training split (seed 7). On the split's validation faces they scored no lower than the better of
 * mean and median, so the baseline is the lower of the two losses and not each loss's own
 * minimizer.
 */
public final class ConstantShapes {
  private final MeanShape mean = new MeanShape();
  private final MedianShape median = new MedianShape();

  /** Returns the shapes of the targets of {@code batches}. */
  public static ConstantShapes of(List<Batch> batches) {
    ConstantShapes shapes = new ConstantShapes();
    batches.forEach(shapes::add);
    return shapes;
  }

  /** Adds the targets of {@code batch}, one row per face. */
  public void add(Batch batch) {
    mean.add(batch);
    median.add(batch);
  }

  /** Returns the mean target, or null before the first batch. */
  public float[] mean() {
    return mean.mean();
  }

  /**
   * Returns the per-coordinate median target of the first {@value MedianShape#MAX_FACES} faces, or
   * null before the first batch.
   */
  public float[] median() {
    return median.median();
  }

  /**
   * Returns the lower of the losses of predicting the mean shape and the median shape for every row
   * of {@code targets}, or NaN before the first batch.
   */
  public double lowestLoss(Tensor targets, Loss loss) {
    float[] meanShape = mean();
    if (meanShape == null) {
      return Double.NaN;
    }
    return Math.min(loss(targets, meanShape, loss), loss(targets, median(), loss));
  }

  /** Returns the loss of predicting {@code shape} for every row of {@code targets}. */
  public static double loss(Tensor targets, float[] shape, Loss loss) {
    try (var _ = GradMode.noGrad()) {
      Tensor prediction = Tensor.of(shape.clone(), 1, shape.length).expand(targets.shape());
      return loss.compute(prediction, targets).item();
    }
  }
}
