package dev.kiln.nn.layers;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/** Logistic sigmoid: 1 / (1 + e^-x). */
public class Sigmoid extends Module {
  @Override
  public Tensor forward(Tensor input) {
    return input.sigmoid();
  }
}
