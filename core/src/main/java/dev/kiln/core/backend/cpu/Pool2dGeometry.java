package dev.kiln.core.backend.cpu;

/**
 * Shapes and hyperparameters of one 2d max or average pooling over an NCHW batch.
 *
 * <p>The input is [batch, channels, inHeight, inWidth] and the output is [batch, channels,
 * outHeight(), outWidth()]. Output sizes round down, as PyTorch does with its default {@code
 * ceil_mode=False}, so every window starts inside the padded input.
 */
public record Pool2dGeometry(
    int batch,
    int channels,
    int inHeight,
    int inWidth,
    int kernelHeight,
    int kernelWidth,
    int strideHeight,
    int strideWidth,
    int padHeight,
    int padWidth) {

  /** Validates every size, including PyTorch's rule that padding is at most half the kernel. */
  public Pool2dGeometry {
    // An empty batch is valid, as in PyTorch 1.13, and Pooling returns its empty output
    // without calling a kernel.
    if (batch < 0) {
      throw new IllegalArgumentException("batch must be non-negative, got " + batch);
    }
    requirePositive("channels", channels);
    requirePositive("inHeight", inHeight);
    requirePositive("inWidth", inWidth);
    requirePositive("kernelHeight", kernelHeight);
    requirePositive("kernelWidth", kernelWidth);
    requirePositive("strideHeight", strideHeight);
    requirePositive("strideWidth", strideWidth);
    if (padHeight < 0 || padWidth < 0) {
      throw new IllegalArgumentException(
          "padding must be non-negative, got " + padHeight + "x" + padWidth);
    }

    // With pad <= kernel / 2 every window contains at least one input element, so max pooling
    // always has an element to choose.
    if (padHeight > kernelHeight / 2 || padWidth > kernelWidth / 2) {
      throw new IllegalArgumentException(
          "padding "
              + padHeight
              + "x"
              + padWidth
              + " is more than half of kernel "
              + kernelHeight
              + "x"
              + kernelWidth
              + ": pad must be at most kernel / 2 (rounded down), as in PyTorch");
    }

    if (outputSize(inHeight, kernelHeight, strideHeight, padHeight) < 1
        || outputSize(inWidth, kernelWidth, strideWidth, padWidth) < 1) {
      throw new IllegalArgumentException(
          "kernel "
              + kernelHeight
              + "x"
              + kernelWidth
              + " does not fit input "
              + inHeight
              + "x"
              + inWidth
              + " with padding "
              + padHeight
              + "x"
              + padWidth
              + ": make the input larger, the kernel smaller or add padding");
    }
  }

  /** Output height: floor((inHeight + 2 padHeight - kernelHeight) / strideHeight) + 1. */
  public int outHeight() {
    return outputSize(inHeight, kernelHeight, strideHeight, padHeight);
  }

  /** Output width, by the same formula as {@link #outHeight()}. */
  public int outWidth() {
    return outputSize(inWidth, kernelWidth, strideWidth, padWidth);
  }

  /** Number of input elements: batch * channels * inHeight * inWidth. */
  public int inputSize() {
    return batch * channels * inHeight * inWidth;
  }

  /** Number of output elements: batch * channels * outHeight() * outWidth(). */
  public int outputSize() {
    return batch * channels * outHeight() * outWidth();
  }

  private static int outputSize(int in, int kernel, int stride, int pad) {
    // Math.floorDiv because the numerator is negative when the kernel does not fit.
    return Math.floorDiv(in + 2 * pad - kernel, stride) + 1;
  }

  private static void requirePositive(String name, int value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + " must be positive, got " + value);
    }
  }
}
