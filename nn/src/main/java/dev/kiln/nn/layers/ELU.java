package dev.kiln.nn.layers;

import dev.kiln.core.ops.Elementwise;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/** Exponential linear unit: x for x &gt; 0, else alpha·(e^x − 1); alpha defaults to 1. */
public class ELU extends Module {
  private final double alpha;

  public ELU() {
    this(1.0);
  }

  public ELU(double alpha) {
    this.alpha = alpha;
  }

  @Override
  public Tensor forward(Tensor input) {
    return Elementwise.elu(input, alpha);
  }

  @Override
  protected String extraRepr() {
    return "alpha=" + alpha;
  }
}
