package dev.kiln.nn.optim;

import dev.kiln.core.tensor.Tensor;
import java.util.List;

/**
 * Adam with decoupled weight decay, as PyTorch's {@code torch.optim.AdamW}: before the Adam update
 * of {@link Adam} (without the L2 term), each step shrinks the parameter as param = param * (1 -
 * learningRate * weightDecay). The default weight decay is 0.01, as in PyTorch.
 */
public final class AdamW extends Adam {

  /** Creates AdamW with PyTorch's defaults, including weight decay 0.01. */
  public AdamW(List<Tensor> parameters) {
    super(parameters, true, 0.01);
  }

  @Override
  public AdamW learningRate(double learningRate) {
    super.learningRate(learningRate);
    return this;
  }

  @Override
  public AdamW betas(double beta1, double beta2) {
    super.betas(beta1, beta2);
    return this;
  }

  @Override
  public AdamW eps(double eps) {
    super.eps(eps);
    return this;
  }

  @Override
  public AdamW weightDecay(double weightDecay) {
    super.weightDecay(weightDecay);
    return this;
  }
}
