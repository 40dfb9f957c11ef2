package dev.kiln.nn.loss;

import dev.kiln.core.ops.LossOps;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Tensor;
import java.util.Objects;

/** Mean squared error, (x − t)² reduced over all elements, like PyTorch's {@code MSELoss}. */
public record MSELoss(Reduction reduction) implements Loss {

  /** Creates the loss with the given reduction. */
  public MSELoss {
    Objects.requireNonNull(reduction, "reduction is null: pass Reduction.MEAN or Reduction.SUM");
  }

  /** Creates the loss with mean reduction. */
  public MSELoss() {
    this(Reduction.MEAN);
  }

  @Override
  public Tensor compute(Tensor prediction, Tensor target) {
    return LossOps.mseLoss(prediction, target, reduction);
  }

  @Override
  public String name() {
    return "mse";
  }

  @Override
  public String toString() {
    return "MSELoss(reduction=" + reduction + ")";
  }
}
