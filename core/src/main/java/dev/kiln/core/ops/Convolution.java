package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Conv2dKernels;
import dev.kiln.core.backend.device.DeviceConv;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/**
 * Two-dimensional convolution (cross-correlation, as in every deep-learning library).
 *
 * <p>On the CPU the work goes to {@link Conv2dKernels}, which picks a method per layer shape. On a
 * device it goes to {@link DeviceConv} by its preferred route: cuDNN where that library loaded,
 * else a column matrix per image, as in the CPU's {@code Conv2dIm2col}, and one batched matrix
 * product per group of images.
 *
 * <p>The backward function returns one gradient per input, in the order that {@link
 * Autograd#record} was given the inputs: x, weight, bias. A gradient is null where its input needs
 * none.
 */
public final class Convolution {
  private Convolution() {}

  /**
   * Convolves {@code x} [N, C, H, W] with {@code weight} [O, C, kH, kW] and adds {@code bias} [O]
   * (or nothing when null). {@code stride}, {@code padding} and {@code dilation} hold {height,
   * width}; padding is with zeros.
   */
  public static Tensor conv2d(
      Tensor x, Tensor weight, Tensor bias, int[] stride, int[] padding, int[] dilation) {
    Checks.rank("conv2d", x, 4, "[N, C, H, W]");
    Checks.rank("conv2d", weight, 4, "weight [outChannels, inChannels, kH, kW]");
    Checks.sameDTypeAndDevice("conv2d", x, weight);
    if (x.size(1) != weight.size(1)) {
      throw new IllegalArgumentException(
          "conv2d: input "
              + Shapes.format(x.shape())
              + " has "
              + x.size(1)
              + " channels but weight "
              + Shapes.format(weight.shape())
              + " expects "
              + weight.size(1)
              + ": build the layer with inChannels="
              + x.size(1)
              + " or convert the input");
    }
    if (bias != null) {
      Checks.sameDTypeAndDevice("conv2d", x, bias);
      if (bias.dim() != 1 || bias.size(0) != weight.size(0)) {
        throw new IllegalArgumentException(
            "conv2d: bias "
                + Shapes.format(bias.shape())
                + " must have shape ["
                + weight.size(0)
                + "] for weight "
                + Shapes.format(weight.shape()));
      }
    }
    Conv2dGeometry g =
        new Conv2dGeometry(
            x.size(0),
            x.size(1),
            x.size(2),
            x.size(3),
            weight.size(0),
            weight.size(2),
            weight.size(3),
            stride[0],
            stride[1],
            padding[0],
            padding[1],
            dilation[0],
            dilation[1]);

    Tensor out =
        Tensor.empty(
            x.dtype(), x.device(), g.batch(), g.outChannels(), g.outHeight(), g.outWidth());
    if (g.batch() == 0) {
      // PyTorch 1.13 returns an empty output, and zero weight and bias gradients.
      return ZeroGradients.record("conv2d", out, x, weight, bias);
    }
    if (x.device().isCpu()) {
      Conv2dKernels.forward(
          x.storage(), weight.storage(), bias == null ? null : bias.storage(), g, out.storage());
    } else {
      DeviceConv conv = kernelsOf(x).conv();
      conv.forward(
          conv.preferredRoute(), bufferOf(x), bufferOf(weight), bufferOf(bias), g, bufferOf(out));
    }

    return Autograd.record(
        "conv2d",
        out,
        grad ->
            x.device().isCpu()
                ? cpuBackward(grad, x, weight, bias, g)
                : deviceBackward(grad, x, weight, bias, g),
        x,
        weight,
        bias);
  }

  /**
   * The backward pass on the CPU: the gradients of x, weight and bias from the output's gradient.
   * Each kernel overwrites its output, so the gradients need no zeroing first.
   */
  private static Tensor[] cpuBackward(
      Tensor grad, Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g) {
    Tensor gradInput = null;
    Tensor gradWeight = null;
    Tensor gradBias = null;
    if (x.requiresGrad()) {
      gradInput = Tensor.emptyLike(x);
      Conv2dKernels.backwardData(grad.storage(), weight.storage(), g, gradInput.storage());
    }
    if (weight.requiresGrad()) {
      gradWeight = Tensor.emptyLike(weight);
      Conv2dKernels.backwardWeight(grad.storage(), x.storage(), g, gradWeight.storage());
    }
    if (bias != null && bias.requiresGrad()) {
      gradBias = Tensor.emptyLike(bias);
      Conv2dKernels.backwardBias(grad.storage(), g, gradBias.storage());
    }
    return new Tensor[] {gradInput, gradWeight, gradBias};
  }

  /** The backward pass on a device: the same three gradients as on the CPU, by device kernels. */
  private static Tensor[] deviceBackward(
      Tensor grad, Tensor x, Tensor weight, Tensor bias, Conv2dGeometry g) {
    DeviceConv conv = kernelsOf(x).conv();
    DeviceConv.Route route = conv.preferredRoute();
    Tensor gradInput = null;
    Tensor gradWeight = null;
    Tensor gradBias = null;
    if (x.requiresGrad()) {
      gradInput = Tensor.emptyLike(x);
      conv.backwardData(route, bufferOf(grad), bufferOf(weight), g, bufferOf(gradInput));
    }
    if (weight.requiresGrad()) {
      gradWeight = Tensor.emptyLike(weight);
      conv.backwardWeight(route, bufferOf(grad), bufferOf(x), g, bufferOf(gradWeight));
    }
    if (bias != null && bias.requiresGrad()) {
      gradBias = Tensor.emptyLike(bias);
      conv.backwardBias(bufferOf(grad), g, bufferOf(gradBias));
    }
    return new Tensor[] {gradInput, gradWeight, gradBias};
  }
}
