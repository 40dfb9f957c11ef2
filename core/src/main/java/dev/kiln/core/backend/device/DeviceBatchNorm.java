package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.Nchw;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.kernels.Dim3;
import java.util.Optional;

/**
 * Launches batch normalization with the kernels of {@code batchnorm.cu}, on data viewed as [n, c,
 * s] as the CPU's {@code BatchNormKernels} view it: statistics are per channel, over the m = n * s
 * values of that channel (s = H * W for a 2d batch norm on NCHW, s = 1 for 1d on [N, C]).
 *
 * <p>gamma and beta may be null (meaning 1 and 0), and so may the running statistics of a training
 * step and the parameter gradients of a backward pass, which are then neither read nor written.
 *
 * <p>The training kernels and both backward kernels run one block per channel: the block's threads
 * stride over the channel's m values, and the sums the formulas need are block reductions with warp
 * shuffles. So the grid is c blocks and the block size follows m. The inference forward pass needs
 * no sums and gives each element its own thread, up to {@code LaunchShapes.MAX_GRID_BLOCKS} blocks,
 * past which each thread's grid-stride loop takes several.
 *
 * <h2>cuDNN</h2>
 *
 * <p>A launcher built with a {@link VendorDnn} hands a call to cuDNN's batch normalization where
 * cuDNN can take it: the data becomes the NCHW shape [n, c, s, 1], and cuDNN needs gamma and beta
 * (and, in a backward pass, both parameter gradients), the running statistics of a training step,
 * and an epsilon of at least {@link #CUDNN_MIN_EPSILON}. A call that lacks one of them runs kiln's
 * kernel instead. cuDNN saves the same two statistics per channel as kiln's kernel, the mean and 1
 * / sqrt(variance + eps), so either backward pass can follow either forward pass.
 */
public final class DeviceBatchNorm {

  /**
   * cuDNN's smallest accepted epsilon, {@code CUDNN_BN_MIN_EPSILON}, which is 0.0 in the headers of
   * cuDNN 8 ({@code cudnn_ops_infer.h}) and cuDNN 9 ({@code cudnn_ops.h}).
   */
  public static final double CUDNN_MIN_EPSILON = 0.0;

  private final DeviceRuntime runtime;
  private final VendorDnn dnn;

  /** Creates the launcher for one device, which runs kiln's own kernels. */
  public DeviceBatchNorm(DeviceRuntime runtime) {
    this(runtime, null);
  }

  /** Creates the launcher for one device that uses {@code dnn} where it can, or never if null. */
  public DeviceBatchNorm(DeviceRuntime runtime, VendorDnn dnn) {
    this.runtime = runtime;
    this.dnn = dnn;
  }

  /**
   * Normalizes with the batch statistics: out = (x - mean) * invStd * gamma + beta, with invStd = 1
   * / sqrt(biasedVar + eps). Writes saveMean and saveInvStd (c floats each) for the backward pass,
   * and updates non-null running statistics as PyTorch does: running = (1 - momentum) * running +
   * momentum * batchStatistic, with the unbiased variance. As {@code
   * BatchNormKernels.forwardTraining}.
   *
   * <p>Launches {@code kiln_batchnorm_forward_training} once, one block per channel, which makes
   * two passes for the statistics (the mean, then the squared deviations) and a third to write.
   *
   * @throws IllegalArgumentException if m = n * s is below 2, where the variance cannot be
   *     estimated
   */
  public void forwardTraining(
      DeviceBuffer x,
      int n,
      int c,
      int s,
      DeviceBuffer gamma,
      DeviceBuffer beta,
      double eps,
      double momentum,
      DeviceBuffer out,
      DeviceBuffer saveMean,
      DeviceBuffer saveInvStd,
      DeviceBuffer runningMean,
      DeviceBuffer runningVar) {
    long m = (long) n * s;
    if (m < 2) {
      throw new IllegalArgumentException(
          "batch norm in training needs at least 2 values per channel to estimate a variance, got"
              + " n * s = "
              + m
              + ": use a larger batch, or evaluation mode");
    }
    requireActivation("batch norm input", x, n, c, s);
    requireActivation("batch norm output", out, n, c, s);
    requireChannels(c, gamma, beta, runningMean, runningVar);
    requireFloats("saveMean", saveMean, c);
    requireFloats("saveInvStd", saveInvStd, c);
    if (cudnnTakes(eps, gamma, beta, runningMean, runningVar)) {
      dnn.batchNormForwardTraining(
          new Nchw(n, c, s, 1),
          x.address(),
          out.address(),
          gamma.address(),
          beta.address(),
          momentum,
          eps,
          runningMean.address(),
          runningVar.address(),
          saveMean.address(),
          saveInvStd.address());
      DeviceRuntime.keepReachable(
          x, out, gamma, beta, runningMean, runningVar, saveMean, saveInvStd);
      return;
    }
    runtime.launch(
        "kiln_batchnorm_forward_training",
        Dim3.of(c),
        blockFor(m),
        0,
        x,
        Optional.ofNullable(gamma),
        Optional.ofNullable(beta),
        out,
        saveMean,
        saveInvStd,
        Optional.ofNullable(runningMean),
        Optional.ofNullable(runningVar),
        n,
        c,
        s,
        (float) eps,
        (float) momentum);
  }

  /**
   * Normalizes with the running statistics: out = (x - runningMean) / sqrt(runningVar + eps) *
   * gamma + beta, as {@code BatchNormKernels.forwardInference}. The running statistics must not be
   * null.
   *
   * <p>Launches {@code kiln_batchnorm_forward_inference} once, with a thread per element up to the
   * grid cap: with the statistics fixed, every element is independent and no reduction is needed.
   */
  public void forwardInference(
      DeviceBuffer x,
      int n,
      int c,
      int s,
      DeviceBuffer gamma,
      DeviceBuffer beta,
      DeviceBuffer runningMean,
      DeviceBuffer runningVar,
      double eps,
      DeviceBuffer out) {
    long elements = requireActivation("batch norm input", x, n, c, s);
    requireActivation("batch norm output", out, n, c, s);
    requireChannels(c, gamma, beta);
    requireFloats("runningMean", runningMean, c);
    requireFloats("runningVar", runningVar, c);
    if (elements == 0) {
      return;
    }
    if (cudnnTakes(eps, gamma, beta)) {
      dnn.batchNormForwardInference(
          new Nchw(n, c, s, 1),
          x.address(),
          out.address(),
          gamma.address(),
          beta.address(),
          runningMean.address(),
          runningVar.address(),
          eps);
      DeviceRuntime.keepReachable(x, out, gamma, beta, runningMean, runningVar);
      return;
    }
    Dim3 block = blockFor(elements);
    runtime.launch(
        "kiln_batchnorm_forward_inference",
        gridFor(elements, block),
        block,
        0,
        x,
        Optional.ofNullable(gamma),
        Optional.ofNullable(beta),
        runningMean,
        runningVar,
        out,
        n,
        c,
        s,
        (float) eps);
  }

  /**
   * Computes the gradients of a training-mode batch norm from the saved mean and inverse standard
   * deviation, as {@code BatchNormKernels.backwardTraining}: overwrites gradInput, and gradGamma =
   * sum(dy * xhat) and gradBeta = sum(dy) where they are non-null.
   *
   * <p>Launches {@code kiln_batchnorm_backward_training} once, one block per channel: one pass sums
   * both terms in a single block reduction, a second writes dx, which depends on both sums because
   * the batch statistics depend on every x of the channel.
   */
  public void backwardTraining(
      DeviceBuffer gradOut,
      DeviceBuffer x,
      int n,
      int c,
      int s,
      DeviceBuffer gamma,
      DeviceBuffer saveMean,
      DeviceBuffer saveInvStd,
      double eps,
      DeviceBuffer gradInput,
      DeviceBuffer gradGamma,
      DeviceBuffer gradBeta) {
    requireActivation("batch norm output gradient", gradOut, n, c, s);
    requireActivation("batch norm input", x, n, c, s);
    requireActivation("batch norm input gradient", gradInput, n, c, s);
    requireChannels(c, gamma, gradGamma, gradBeta);
    requireFloats("saveMean", saveMean, c);
    requireFloats("saveInvStd", saveInvStd, c);
    if (cudnnTakes(eps, gamma, gradGamma, gradBeta)) {
      dnn.batchNormBackward(
          new Nchw(n, c, s, 1),
          x.address(),
          gradOut.address(),
          gradInput.address(),
          gamma.address(),
          gradGamma.address(),
          gradBeta.address(),
          eps,
          saveMean.address(),
          saveInvStd.address());
      DeviceRuntime.keepReachable(
          x, gradOut, gradInput, gamma, gradGamma, gradBeta, saveMean, saveInvStd);
      return;
    }
    runtime.launch(
        "kiln_batchnorm_backward_training",
        Dim3.of(c),
        blockFor((long) n * s),
        0,
        gradOut,
        x,
        Optional.ofNullable(gamma),
        saveMean,
        saveInvStd,
        gradInput,
        Optional.ofNullable(gradGamma),
        Optional.ofNullable(gradBeta),
        n,
        c,
        s);
  }

  /**
   * Computes the gradients of an inference-mode batch norm, where the running statistics are
   * constants, as {@code BatchNormKernels.backwardInference}: dx = dy * gamma * invStd, and
   * gradGamma and gradBeta as in training where they are non-null.
   *
   * <p>Launches {@code kiln_batchnorm_backward_inference} once, one block per channel: dx needs no
   * sums, but the parameter gradients do, and one pass serves both.
   */
  public void backwardInference(
      DeviceBuffer gradOut,
      DeviceBuffer x,
      int n,
      int c,
      int s,
      DeviceBuffer gamma,
      DeviceBuffer runningMean,
      DeviceBuffer runningVar,
      double eps,
      DeviceBuffer gradInput,
      DeviceBuffer gradGamma,
      DeviceBuffer gradBeta) {
    requireActivation("batch norm output gradient", gradOut, n, c, s);
    requireActivation("batch norm input", x, n, c, s);
    requireActivation("batch norm input gradient", gradInput, n, c, s);
    requireChannels(c, gamma, gradGamma, gradBeta);
    requireFloats("runningMean", runningMean, c);
    requireFloats("runningVar", runningVar, c);
    runtime.launch(
        "kiln_batchnorm_backward_inference",
        Dim3.of(c),
        blockFor((long) n * s),
        0,
        gradOut,
        x,
        Optional.ofNullable(gamma),
        runningMean,
        runningVar,
        gradInput,
        Optional.ofNullable(gradGamma),
        Optional.ofNullable(gradBeta),
        n,
        c,
        s,
        (float) eps);
  }

  /** Checks an [n, c, s] buffer and returns its element count. */
  private static long requireActivation(String name, DeviceBuffer buffer, int n, int c, int s) {
    if (n < 1 || c < 1 || s < 1) {
      throw new IllegalArgumentException(
          "batch norm sizes must be positive, got n=" + n + ", c=" + c + ", s=" + s);
    }
    long elements = (long) n * c * s;
    LaunchShapes.intSize(name + " element count", elements);
    requireFloats(name, buffer, elements);
    return elements;
  }

  /** Checks that each non-null per-channel buffer has room for c floats. */
  private static void requireChannels(int c, DeviceBuffer... perChannel) {
    for (DeviceBuffer buffer : perChannel) {
      requireOptional("a per-channel buffer of " + c + " channels", buffer, c);
    }
  }

  /**
   * Returns whether cuDNN serves a call: this launcher has cuDNN, every buffer that cuDNN requires
   * is present, and cuDNN accepts {@code eps}.
   */
  private boolean cudnnTakes(double eps, DeviceBuffer... required) {
    if (dnn == null || eps < CUDNN_MIN_EPSILON) {
      return false;
    }
    for (DeviceBuffer buffer : required) {
      if (buffer == null) {
        return false;
      }
    }
    return true;
  }
}
