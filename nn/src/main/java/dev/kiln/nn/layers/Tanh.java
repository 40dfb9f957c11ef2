package dev.kiln.nn.layers;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/** Hyperbolic tangent. */
public class Tanh extends Module {
  @Override
  public Tensor forward(Tensor input) {
    return input.tanh();
  }
}
