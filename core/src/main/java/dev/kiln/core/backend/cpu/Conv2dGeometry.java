package dev.kiln.core.backend.cpu;

/**
 * Shapes and hyperparameters of one 2d convolution over an NCHW batch, without groups.
 *
 * <p>The input is [batch, inChannels, inHeight, inWidth], the weight is [outChannels, inChannels,
 * kernelHeight, kernelWidth] and the output is [batch, outChannels, outHeight(), outWidth()].
 * Padding is zeros on both sides of each spatial axis.
 */
public record Conv2dGeometry(
    int batch,
    int inChannels,
    int inHeight,
    int inWidth,
    int outChannels,
    int kernelHeight,
    int kernelWidth,
    int strideHeight,
    int strideWidth,
    int padHeight,
    int padWidth,
    int dilationHeight,
    int dilationWidth) {

  /** Validates every size and rejects a kernel that does not fit the padded input. */
  public Conv2dGeometry {
    // An empty batch is valid, as in PyTorch 1.13, and Convolution.conv2d returns its empty output
    // without calling a kernel.
    if (batch < 0) {
      throw new IllegalArgumentException("batch must be non-negative, got " + batch);
    }
    requirePositive("inChannels", inChannels);
    requirePositive("inHeight", inHeight);
    requirePositive("inWidth", inWidth);
    requirePositive("outChannels", outChannels);
    requirePositive("kernelHeight", kernelHeight);
    requirePositive("kernelWidth", kernelWidth);
    requirePositive("strideHeight", strideHeight);
    requirePositive("strideWidth", strideWidth);
    requirePositive("dilationHeight", dilationHeight);
    requirePositive("dilationWidth", dilationWidth);
    if (padHeight < 0 || padWidth < 0) {
      throw new IllegalArgumentException(
          "padding must be non-negative, got " + padHeight + "x" + padWidth);
    }

    int outHeight = outputSize(inHeight, kernelHeight, strideHeight, padHeight, dilationHeight);
    int outWidth = outputSize(inWidth, kernelWidth, strideWidth, padWidth, dilationWidth);
    if (outHeight < 1 || outWidth < 1) {
      throw new IllegalArgumentException(
          "kernel "
              + kernelHeight
              + "x"
              + kernelWidth
              + " with dilation "
              + pairText(dilationHeight, dilationWidth)
              + " does not fit input "
              + inHeight
              + "x"
              + inWidth
              + " with padding "
              + pairText(padHeight, padWidth)
              + ": make the input larger or add padding");
    }
  }

  /** Output height: floor((inHeight + 2 pad - dilation (kernel - 1) - 1) / stride) + 1. */
  public int outHeight() {
    return outputSize(inHeight, kernelHeight, strideHeight, padHeight, dilationHeight);
  }

  /** Output width, by the same formula as {@link #outHeight()}. */
  public int outWidth() {
    return outputSize(inWidth, kernelWidth, strideWidth, padWidth, dilationWidth);
  }

  /** Number of input elements: batch * inChannels * inHeight * inWidth. */
  public int inputSize() {
    return batch * inChannels * inHeight * inWidth;
  }

  /** Number of weight elements: outChannels * inChannels * kernelHeight * kernelWidth. */
  public int weightSize() {
    return outChannels * inChannels * kernelHeight * kernelWidth;
  }

  /** Number of output elements: batch * outChannels * outHeight() * outWidth(). */
  public int outputSize() {
    return batch * outChannels * outHeight() * outWidth();
  }

  private static int outputSize(int in, int kernel, int stride, int pad, int dilation) {
    // Math.floorDiv because the numerator is negative when the kernel does not fit, and plain
    // division would round that towards zero and report an output of size 1.
    return Math.floorDiv(in + 2 * pad - dilation * (kernel - 1) - 1, stride) + 1;
  }

  /** Formats a pair as "2" when both values agree, else as "2x3". */
  private static String pairText(int height, int width) {
    return height == width ? Integer.toString(height) : height + "x" + width;
  }

  private static void requirePositive(String name, int value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + " must be positive, got " + value);
    }
  }
}
