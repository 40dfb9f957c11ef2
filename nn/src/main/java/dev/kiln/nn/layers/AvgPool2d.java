package dev.kiln.nn.layers;

import dev.kiln.core.ops.Pooling;
import dev.kiln.core.tensor.Tensor;

/**
 * Average pooling (padded zeros count in the divisor); the stride defaults to the kernel size, as
 * in PyTorch.
 */
public class AvgPool2d extends Pool2d {

  public AvgPool2d(int kernelSize) {
    this(kernelSize, kernelSize, 0);
  }

  public AvgPool2d(int kernelSize, int stride, int padding) {
    this(square(kernelSize), square(stride), square(padding));
  }

  /** Each argument is {height, width}. */
  public AvgPool2d(int[] kernel, int[] stride, int[] padding) {
    super(kernel, stride, padding);
  }

  @Override
  protected Tensor pool(Tensor input, int[] kernel, int[] stride, int[] padding) {
    return Pooling.avgPool2d(input, kernel, stride, padding);
  }
}
