package dev.kiln.nn.loss;

import dev.kiln.core.ops.LossOps;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Tensor;
import java.util.Objects;

/** Absolute error, |x − t| reduced over all elements, like PyTorch's {@code L1Loss}. */
public record L1Loss(Reduction reduction) implements Loss {

  /** Creates the loss with the given reduction. */
  public L1Loss {
    Objects.requireNonNull(reduction, "reduction is null: pass Reduction.MEAN or Reduction.SUM");
  }

  /** Creates the loss with mean reduction. */
  public L1Loss() {
    this(Reduction.MEAN);
  }

  @Override
  public Tensor compute(Tensor prediction, Tensor target) {
    return LossOps.l1Loss(prediction, target, reduction);
  }

  @Override
  public String name() {
    return "l1";
  }

  @Override
  public String toString() {
    return "L1Loss(reduction=" + reduction + ")";
  }
}
