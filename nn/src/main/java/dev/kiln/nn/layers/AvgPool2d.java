package dev.kiln.nn.layers;

import dev.kiln.core.ops.Pooling;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/**
 * Average pooling (padded zeros count in the divisor); the stride defaults to the kernel size, as
 * in PyTorch.
 */
public class AvgPool2d extends Module {
  private final int[] kernel;
  private final int[] stride;
  private final int[] padding;

  public AvgPool2d(int kernelSize) {
    this(kernelSize, kernelSize, 0);
  }

  public AvgPool2d(int kernelSize, int stride, int padding) {
    this(
        new int[] {kernelSize, kernelSize},
        new int[] {stride, stride},
        new int[] {padding, padding});
  }

  /** Each argument is {height, width}. */
  public AvgPool2d(int[] kernel, int[] stride, int[] padding) {
    this.kernel = LayerArgs.pair("kernel", kernel, 1);
    this.stride = LayerArgs.pair("stride", stride, 1);
    this.padding = LayerArgs.pair("padding", padding, 0);
  }

  @Override
  public Tensor forward(Tensor input) {
    return Pooling.avgPool2d(input, kernel, stride, padding);
  }

  @Override
  protected String extraRepr() {
    return "kernel_size="
        + LayerArgs.format(kernel)
        + ", stride="
        + LayerArgs.format(stride)
        + ", padding="
        + LayerArgs.format(padding);
  }
}
