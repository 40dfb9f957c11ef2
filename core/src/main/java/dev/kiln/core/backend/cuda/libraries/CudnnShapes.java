package dev.kiln.core.backend.cuda.libraries;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;

/**
 * The shapes that kiln puts into cuDNN descriptors, computed in plain Java.
 *
 * <h2>Descriptors</h2>
 *
 * <p>cuDNN does not take shapes as arguments to each call. The caller first fills small opaque
 * objects called descriptors: a tensor descriptor contains a tensor's sizes and strides, a filter
 * descriptor a convolution weight's sizes, a convolution descriptor the padding, stride and
 * dilation, a pooling descriptor the window. Every call then takes the descriptors next to the
 * device pointers. This class computes what goes into them, so that the arithmetic is tested
 * without a GPU. The output sizes follow the formulas of cuDNN's documentation for {@code
 * cudnnGetConvolution2dForwardOutputDim} and {@code cudnnGetPooling2dForwardOutputDim}, and the
 * tests check them against kiln's own {@link Conv2dGeometry} and {@link Pool2dGeometry}.
 */
public final class CudnnShapes {

  private CudnnShapes() {}

  /** Returns the input shape of a convolution, [batch, inChannels, inHeight, inWidth]. */
  public static Nchw convolutionInput(Conv2dGeometry g) {
    return new Nchw(g.batch(), g.inChannels(), g.inHeight(), g.inWidth());
  }

  /**
   * Returns the filter (weight) shape as cuDNN's filter descriptor takes it: [outChannels,
   * inChannels, kernelHeight, kernelWidth], which cuDNN calls K, C, R, S.
   */
  public static Nchw convolutionFilter(Conv2dGeometry g) {
    return new Nchw(g.outChannels(), g.inChannels(), g.kernelHeight(), g.kernelWidth());
  }

  /**
   * Returns the output shape that {@code cudnnGetConvolution2dForwardOutputDim} returns: each
   * spatial size is {@code 1 + (in + 2 pad - ((kernel - 1) dilation + 1)) / stride}, with integer
   * division.
   *
   * @throws IllegalArgumentException if the dilated kernel does not fit the padded input, where
   *     cuDNN would return a size below 1
   */
  public static Nchw convolutionOutput(Conv2dGeometry g) {
    int height =
        convolutionSize(
            g.inHeight(), g.padHeight(), g.kernelHeight(), g.dilationHeight(), g.strideHeight());
    int width =
        convolutionSize(
            g.inWidth(), g.padWidth(), g.kernelWidth(), g.dilationWidth(), g.strideWidth());
    return new Nchw(g.batch(), g.outChannels(), height, width);
  }

  /** Returns the bias shape for {@code cudnnConvolutionBackwardBias}: [1, outChannels, 1, 1]. */
  public static Nchw convolutionBias(Conv2dGeometry g) {
    return new Nchw(1, g.outChannels(), 1, 1);
  }

  /** Returns the input shape of a pooling, [batch, channels, inHeight, inWidth]. */
  public static Nchw poolingInput(Pool2dGeometry g) {
    return new Nchw(g.batch(), g.channels(), g.inHeight(), g.inWidth());
  }

  /**
   * Returns the output shape that {@code cudnnGetPooling2dForwardOutputDim} returns: each spatial
   * size is {@code 1 + (in + 2 pad - window) / stride}, with integer division.
   */
  public static Nchw poolingOutput(Pool2dGeometry g) {
    int height = poolingSize(g.inHeight(), g.padHeight(), g.kernelHeight(), g.strideHeight());
    int width = poolingSize(g.inWidth(), g.padWidth(), g.kernelWidth(), g.strideWidth());
    return new Nchw(g.batch(), g.channels(), height, width);
  }

  /**
   * Returns the shape of batch norm's scale, bias, mean and variance in spatial mode (one value per
   * channel), as {@code cudnnDeriveBNTensorDescriptor} derives it: [1, C, 1, 1].
   */
  public static Nchw batchNormParameters(Nchw input) {
    return new Nchw(1, input.c(), 1, 1);
  }

  private static int convolutionSize(int in, int pad, int kernel, int dilation, int stride) {
    int span = (kernel - 1) * dilation + 1;
    int room = in + 2 * pad - span;
    if (room < 0) {
      throw new IllegalArgumentException(
          "dilated kernel span " + span + " does not fit input " + in + " with padding " + pad);
    }
    return 1 + room / stride;
  }

  private static int poolingSize(int in, int pad, int window, int stride) {
    int room = in + 2 * pad - window;
    if (room < 0) {
      throw new IllegalArgumentException(
          "pooling window " + window + " does not fit input " + in + " with padding " + pad);
    }
    return 1 + room / stride;
  }
}
