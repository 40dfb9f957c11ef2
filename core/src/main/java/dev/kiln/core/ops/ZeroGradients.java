package dev.kiln.core.ops;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.tensor.Tensor;

/**
 * Records an op whose output does not depend on its inputs' values, such as a convolution, pooling,
 * batch norm or loss of an empty batch. Every input that needs a gradient gets zeros of its own
 * shape, an empty tensor for an empty input, as in PyTorch 1.13.
 */
final class ZeroGradients {
  private ZeroGradients() {}

  /** Records {@code output} of op {@code opName}, with a zero gradient for each input. */
  static Tensor record(String opName, Tensor output, Tensor... inputs) {
    return Autograd.record(
        opName,
        output,
        grad -> {
          Tensor[] gradients = new Tensor[inputs.length];
          for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] != null && inputs[i].requiresGrad()) {
              gradients[i] = Tensor.zerosLike(inputs[i]);
            }
          }
          return gradients;
        },
        inputs);
  }
}
