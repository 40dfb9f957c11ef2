package dev.kiln.nn.layers;

import dev.kiln.core.ops.Pooling;
import dev.kiln.core.tensor.Tensor;

/** Max pooling; the stride defaults to the kernel size, as in PyTorch. */
public class MaxPool2d extends Pool2d {

  public MaxPool2d(int kernelSize) {
    this(kernelSize, kernelSize, 0);
  }

  public MaxPool2d(int kernelSize, int stride, int padding) {
    this(square(kernelSize), square(stride), square(padding));
  }

  /** Each argument is {height, width}. */
  public MaxPool2d(int[] kernel, int[] stride, int[] padding) {
    super(kernel, stride, padding);
  }

  @Override
  protected Tensor pool(Tensor input, int[] kernel, int[] stride, int[] padding) {
    return Pooling.maxPool2d(input, kernel, stride, padding);
  }
}
