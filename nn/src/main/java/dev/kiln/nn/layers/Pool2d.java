package dev.kiln.nn.layers;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;

/**
 * Settings shared by the 2-D pooling layers: kernel, stride and padding, each {height, width}. The
 * stride defaults to the kernel size, as in PyTorch.
 */
public abstract class Pool2d extends Module {
  private final int[] kernel;
  private final int[] stride;
  private final int[] padding;

  /** Each argument is {height, width}. */
  protected Pool2d(int[] kernel, int[] stride, int[] padding) {
    this.kernel = LayerArgs.pair("kernel", kernel, 1);
    this.stride = LayerArgs.pair("stride", stride, 1);
    this.padding = LayerArgs.pair("padding", padding, 0);
  }

  /** Pools {@code input} with the given settings; each array is {height, width}. */
  protected abstract Tensor pool(Tensor input, int[] kernel, int[] stride, int[] padding);

  @Override
  public Tensor forward(Tensor input) {
    return pool(input, kernel, stride, padding);
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

  static int[] square(int size) {
    return new int[] {size, size};
  }
}
