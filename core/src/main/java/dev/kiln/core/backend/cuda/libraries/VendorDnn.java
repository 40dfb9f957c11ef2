package dev.kiln.core.backend.cuda.libraries;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;

/**
 * The cuDNN calls that kiln's layers make, on device pointers to packed NCHW float32 tensors,
 * whichever binding serves them.
 *
 * <p>Each call builds the cuDNN descriptors for its shapes (see {@link CudnnShapes}), draws any
 * workspace from kiln's caching allocator, and enqueues the work on kiln's stream. Convolutions
 * choose their algorithm once per shape and direction (see {@link AlgorithmChoice}) and reuse it.
 * Backward calls with {@code accumulate} add into their output (cuDNN's beta = 1) instead of
 * overwriting it (beta = 0), which is how gradients of a reused weight sum up.
 */
public interface VendorDnn extends VendorBinding {

  /** Pooling modes, with their {@code cudnnPoolingMode_t} values. */
  enum PoolingMode {
    /** Maximum of each window; the deterministic variant, so repeated runs agree bit for bit. */
    MAX(3),
    /**
     * Mean of each window, dividing by the full window size including padding (PyTorch's default).
     */
    AVERAGE_INCLUDE_PADDING(1),
    /** Mean of each window over the elements inside the input only. */
    AVERAGE_EXCLUDE_PADDING(2);

    /** The {@code cudnnPoolingMode_t} value. */
    public final int cudnnValue;

    PoolingMode(int cudnnValue) {
      this.cudnnValue = cudnnValue;
    }
  }

  /** Activation functions, with their {@code cudnnActivationMode_t} values. */
  enum ActivationMode {
    /** 1 / (1 + exp(-x)). */
    SIGMOID(0),
    /** max(0, x). */
    RELU(1),
    /** tanh(x). */
    TANH(2);

    /** The {@code cudnnActivationMode_t} value. */
    public final int cudnnValue;

    ActivationMode(int cudnnValue) {
      this.cudnnValue = cudnnValue;
    }
  }

  /** Computes y = conv(x, w), cross-correlation as in PyTorch, overwriting y. */
  void convolutionForward(Conv2dGeometry g, long x, long w, long y);

  /** Computes dx = the gradient of the convolution with respect to its input. */
  void convolutionBackwardData(Conv2dGeometry g, long w, long dy, long dx, boolean accumulate);

  /** Computes dw = the gradient of the convolution with respect to its weight. */
  void convolutionBackwardFilter(Conv2dGeometry g, long x, long dy, long dw, boolean accumulate);

  /** Computes db[k] = the sum of dy over batch, height and width for each output channel k. */
  void convolutionBackwardBias(Conv2dGeometry g, long dy, long db, boolean accumulate);

  /** Computes y = pool(x), overwriting y. */
  void poolingForward(PoolingMode mode, Pool2dGeometry g, long x, long y);

  /** Computes dx from the forward's x and y and the gradient dy, overwriting dx. */
  void poolingBackward(PoolingMode mode, Pool2dGeometry g, long x, long y, long dy, long dx);

  /**
   * Normalizes x per channel with the batch's statistics, in spatial mode ({@code
   * cudnnBatchNormalizationForwardTraining}).
   *
   * @param momentum the weight of the batch statistic in the running averages: running = (1 -
   *     momentum) running + momentum batch, as PyTorch's momentum
   * @param saveMean receives the batch mean per channel, for the backward pass
   * @param saveInvStd receives 1 / sqrt(batch variance + epsilon) per channel
   */
  void batchNormForwardTraining(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      double momentum,
      double epsilon,
      long runningMean,
      long runningVariance,
      long saveMean,
      long saveInvStd);

  /** Normalizes x per channel with the running statistics ({@code ...ForwardInference}). */
  void batchNormForwardInference(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      long runningMean,
      long runningVariance,
      double epsilon);

  /**
   * Computes dx, dScale and dBias from the forward's saved statistics, overwriting all three
   * ({@code cudnnBatchNormalizationBackward}).
   */
  void batchNormBackward(
      Nchw shape,
      long x,
      long dy,
      long dx,
      long scale,
      long dScale,
      long dBias,
      double epsilon,
      long saveMean,
      long saveInvStd);

  /**
   * Returns the bytes of the reserve space that dropout over {@code elements} values needs. The
   * forward pass writes its mask there and the backward pass reads it.
   */
  long dropoutReserveBytes(int elements);

  /**
   * Zeroes each element with probability {@code probability} and scales the rest by 1 / (1 -
   * probability). The random state is created once per probability and seed and advances with every
   * call, so each call draws a new mask.
   */
  void dropoutForward(
      float probability, long seed, int elements, long x, long y, long reserve, long reserveBytes);

  /** Applies the forward's mask and scale, read from {@code reserve}, to dy. */
  void dropoutBackward(
      float probability,
      long seed,
      int elements,
      long dy,
      long dx,
      long reserve,
      long reserveBytes);

  /** Computes y = f(x) elementwise, overwriting y. */
  void activationForward(ActivationMode mode, int elements, long x, long y);

  /** Computes dx = f'(x) dy elementwise from the forward's x and y, overwriting dx. */
  void activationBackward(ActivationMode mode, int elements, long y, long dy, long x, long dx);
}
