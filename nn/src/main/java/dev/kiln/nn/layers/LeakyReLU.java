package dev.kiln.nn.layers;

import dev.kiln.core.ops.Elementwise;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/** x for x &gt; 0, else negativeSlope·x; the default slope is 0.01, as in PyTorch. */
public class LeakyReLU extends Module {
  private final double negativeSlope;

  public LeakyReLU() {
    this(0.01);
  }

  public LeakyReLU(double negativeSlope) {
    this.negativeSlope = negativeSlope;
  }

  @Override
  public Tensor forward(Tensor input) {
    return Elementwise.leakyRelu(input, negativeSlope);
  }

  @Override
  protected String extraRepr() {
    return "negative_slope=" + negativeSlope;
  }
}
