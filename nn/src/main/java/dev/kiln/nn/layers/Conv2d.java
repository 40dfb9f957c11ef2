package dev.kiln.nn.layers;

import dev.kiln.core.ops.Convolution;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.init.Init;

/**
 * 2-D convolution over [N, C, H, W] input with weight [out, in, kH, kW] and an optional bias [out].
 * Initialized as PyTorch does by default (see {@link Init#pytorchDefault}).
 */
public class Conv2d extends Module {
  private final int inChannels;
  private final int outChannels;
  private final int[] kernel;
  private final int[] stride;
  private final int[] padding;
  private final int[] dilation;
  private final Tensor weight;
  private final Tensor bias;

  /** A square kernel with stride 1, no padding, and a bias, in float32. */
  public Conv2d(int inChannels, int outChannels, int kernelSize) {
    this(inChannels, outChannels, kernelSize, 1, 0);
  }

  /** A square kernel with the given stride and padding, and a bias, in float32. */
  public Conv2d(int inChannels, int outChannels, int kernelSize, int stride, int padding) {
    this(
        inChannels,
        outChannels,
        new int[] {kernelSize, kernelSize},
        new int[] {stride, stride},
        new int[] {padding, padding},
        new int[] {1, 1},
        true,
        DType.FLOAT32,
        Generator.global());
  }

  /**
   * The general form; each of kernel, stride, padding and dilation is {height, width}. The
   * generator draws the initial weights.
   */
  public Conv2d(
      int inChannels,
      int outChannels,
      int[] kernel,
      int[] stride,
      int[] padding,
      int[] dilation,
      boolean bias,
      DType dtype,
      Generator generator) {
    if (inChannels <= 0 || outChannels <= 0) {
      throw new IllegalArgumentException(
          "Conv2d channels must be positive, got in=" + inChannels + ", out=" + outChannels);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernel = LayerArgs.pair("kernel", kernel, 1);
    this.stride = LayerArgs.pair("stride", stride, 1);
    this.padding = LayerArgs.pair("padding", padding, 0);
    this.dilation = LayerArgs.pair("dilation", dilation, 1);
    this.weight =
        registerParameter(
            "weight", Tensor.zeros(dtype, outChannels, inChannels, this.kernel[0], this.kernel[1]));
    this.bias = bias ? registerParameter("bias", Tensor.zeros(dtype, outChannels)) : null;
    Init.pytorchDefault(weight, this.bias, generator);
  }

  public Tensor weight() {
    return weight;
  }

  /** The bias, or null for a layer built without one. */
  public Tensor bias() {
    return bias;
  }

  @Override
  public Tensor forward(Tensor input) {
    return Convolution.conv2d(input, weight, bias, stride, padding, dilation);
  }

  @Override
  protected String extraRepr() {
    StringBuilder text = new StringBuilder();
    text.append(inChannels).append(", ").append(outChannels);
    text.append(", kernel_size=").append(LayerArgs.format(kernel));
    text.append(", stride=").append(LayerArgs.format(stride));
    if (padding[0] != 0 || padding[1] != 0) {
      text.append(", padding=").append(LayerArgs.format(padding));
    }
    if (dilation[0] != 1 || dilation[1] != 1) {
      text.append(", dilation=").append(LayerArgs.format(dilation));
    }
    if (bias == null) {
      text.append(", bias=False");
    }
    return text.toString();
  }
}
