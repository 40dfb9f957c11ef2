package dev.kiln.nn.layers;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/** Rectified linear unit: max(0, x). */
public class ReLU extends Module {
  @Override
  public Tensor forward(Tensor input) {
    return input.relu();
  }
}
