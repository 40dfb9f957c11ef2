package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.BatchNormChannels.affine;
import static dev.kiln.core.backend.cpu.BatchNormChannels.channelSquaredDeviation;
import static dev.kiln.core.backend.cpu.BatchNormChannels.channelSum;
import static dev.kiln.core.backend.cpu.BatchNormChecks.requireActivation;
import static dev.kiln.core.backend.cpu.BatchNormChecks.requireChannels;
import static dev.kiln.core.backend.cpu.BatchNormChecks.requireLength;
import static dev.kiln.core.backend.cpu.BatchNormChecks.requireNonNullChannels;
import static dev.kiln.core.backend.cpu.BatchNormChecks.requireSameDtype;

import dev.kiln.core.tensor.Storage;

/**
 * Batch normalization over the input viewed as [n, c, s]: statistics are per channel c, over the m
 * = n * s values of that channel. For a 2d batch norm on NCHW, s = H * W; for 1d on [N, C], s = 1.
 *
 * <p>x, out, gradOut and gradInput must share one dtype and have n * c * s elements. The
 * per-channel tensors (gamma, beta, running statistics and their gradients) have c elements and may
 * have either dtype. A null gamma means 1 and a null beta means 0. Statistics are accumulated in
 * double. Every kernel overwrites its outputs.
 */
public final class BatchNormKernels {

  private BatchNormKernels() {}

  /**
   * Normalizes with the batch statistics: out = (x - mean) * invStd * gamma + beta, where invStd =
   * 1 / sqrt(biasedVar + eps). Overwrites {@code out}, {@code saveMean} and {@code saveInvStd} (c
   * each), which the backward pass needs.
   *
   * <p>When {@code runningMean} and {@code runningVar} are non-null they are updated as in PyTorch:
   * running = (1 - momentum) * running + momentum * batchStat, with the unbiased variance biasedVar
   * * m / (m - 1).
   *
   * @throws IllegalArgumentException if m = n * s is 1, because the variance is then undefined
   */
  public static void forwardTraining(
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      Storage beta,
      double eps,
      Storage out,
      double[] saveMean,
      double[] saveInvStd,
      Storage runningMean,
      Storage runningVar,
      double momentum) {
    requireActivation("input", x, n, c, s);
    requireActivation("output", out, n, c, s);
    requireSameDtype(x, out);
    requireChannels("gamma", gamma, c);
    requireChannels("beta", beta, c);
    requireChannels("runningMean", runningMean, c);
    requireChannels("runningVar", runningVar, c);
    requireLength("saveMean", saveMean, c);
    requireLength("saveInvStd", saveInvStd, c);
    long m = (long) n * s;
    if (m == 1) {
      throw new IllegalArgumentException(
          "expected more than 1 value per channel when training, got input of shape ["
              + n
              + ", "
              + c
              + ", "
              + s
              + "]: use a batch larger than 1 or evaluation mode");
    }

    // Channels are independent and each one is summed serially, so splitting the channels over
    // threads gives the same bits as the serial loop.
    CpuParallel.forEachChunk(
        c,
        (chunk, firstChannel, endChannel) ->
            trainChannels(
                x,
                n,
                c,
                s,
                gamma,
                beta,
                eps,
                out,
                saveMean,
                saveInvStd,
                runningMean,
                runningVar,
                momentum,
                firstChannel,
                endChannel));
  }

  /** Runs the training forward pass of channels [firstChannel, endChannel), serially. */
  static void trainChannels(
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      Storage beta,
      double eps,
      Storage out,
      double[] saveMean,
      double[] saveInvStd,
      Storage runningMean,
      Storage runningVar,
      double momentum,
      int firstChannel,
      int endChannel) {
    long m = (long) n * s;
    for (int ch = firstChannel; ch < endChannel; ch++) {
      // Two passes: the mean first, then the squared deviations from it, which loses less
      // precision than E[x^2] - E[x]^2 when the mean is large compared with the spread.
      double mean = channelSum(x, n, c, s, ch) / m;
      double biasedVar = channelSquaredDeviation(x, n, c, s, ch, mean) / m;
      double invStd = 1.0 / Math.sqrt(biasedVar + eps);
      saveMean[ch] = mean;
      saveInvStd[ch] = invStd;

      double scale = invStd * valueOr(gamma, ch, 1.0);
      double shift = valueOr(beta, ch, 0.0) - mean * scale;
      affine(x, out, n, c, s, ch, scale, shift);

      if (runningMean != null) {
        runningMean.set(ch, (1 - momentum) * runningMean.get(ch) + momentum * mean);
      }
      if (runningVar != null) {
        double unbiasedVar = biasedVar * m / (m - 1);
        runningVar.set(ch, (1 - momentum) * runningVar.get(ch) + momentum * unbiasedVar);
      }
    }
  }

  /**
   * Normalizes with the running statistics: out = (x - runningMean) / sqrt(runningVar + eps) *
   * gamma + beta. Overwrites {@code out}.
   */
  public static void forwardInference(
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      Storage beta,
      Storage runningMean,
      Storage runningVar,
      double eps,
      Storage out) {
    requireActivation("input", x, n, c, s);
    requireActivation("output", out, n, c, s);
    requireSameDtype(x, out);
    requireChannels("gamma", gamma, c);
    requireChannels("beta", beta, c);
    requireNonNullChannels("runningMean", runningMean, c);
    requireNonNullChannels("runningVar", runningVar, c);

    for (int ch = 0; ch < c; ch++) {
      double invStd = 1.0 / Math.sqrt(runningVar.get(ch) + eps);
      double scale = invStd * valueOr(gamma, ch, 1.0);
      double shift = valueOr(beta, ch, 0.0) - runningMean.get(ch) * scale;
      affine(x, out, n, c, s, ch, scale, shift);
    }
  }

  /**
   * Computes the gradients of a training-mode batch norm from the saved batch statistics.
   * Overwrites {@code gradInput}, and {@code gradGamma} and {@code gradBeta} when they are
   * non-null.
   */
  public static void backwardTraining(
      Storage gradOut,
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      double[] saveMean,
      double[] saveInvStd,
      Storage gradInput,
      Storage gradGamma,
      Storage gradBeta) {
    requireActivation("output gradient", gradOut, n, c, s);
    requireActivation("input", x, n, c, s);
    requireActivation("input gradient", gradInput, n, c, s);
    requireSameDtype(x, gradOut);
    requireSameDtype(x, gradInput);
    requireChannels("gamma", gamma, c);
    requireChannels("gradGamma", gradGamma, c);
    requireChannels("gradBeta", gradBeta, c);
    requireLength("saveMean", saveMean, c);
    requireLength("saveInvStd", saveInvStd, c);

    if (x instanceof Storage.F32) {
      float[] dy = gradOut.floats();
      float[] xs = x.floats();
      float[] dx = gradInput.floats();
      // Each chunk of channels writes only its own channels of every output.
      CpuParallel.forEachChunk(
          c,
          (chunk, firstChannel, endChannel) -> {
            for (int ch = firstChannel; ch < endChannel; ch++) {
              FastBatchNorm.backwardChannel(
                  dy, xs, n, c, s, ch, gamma, saveMean, saveInvStd, dx, gradGamma, gradBeta);
            }
          });
      return;
    }
    backwardTrainingPlain(
        gradOut, x, n, c, s, gamma, saveMean, saveInvStd, gradInput, gradGamma, gradBeta);
  }

  /** The reference loop of {@link #backwardTraining}, serial, for both dtypes. */
  static void backwardTrainingPlain(
      Storage gradOut,
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      double[] saveMean,
      double[] saveInvStd,
      Storage gradInput,
      Storage gradGamma,
      Storage gradBeta) {
    long m = (long) n * s;
    for (int ch = 0; ch < c; ch++) {
      double mean = saveMean[ch];
      double invStd = saveInvStd[ch];
      double sumDy = 0;
      double sumDyXhat = 0;
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          double dy = gradOut.get(j);
          sumDy += dy;
          sumDyXhat += dy * (x.get(j) - mean) * invStd;
        }
      }

      // The mean and variance depend on every x of the channel, which adds the two sums:
      // dx = invStd * gamma / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
      double factor = invStd * valueOr(gamma, ch, 1.0) / m;
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          double xhat = (x.get(j) - mean) * invStd;
          gradInput.set(j, factor * (m * gradOut.get(j) - sumDy - xhat * sumDyXhat));
        }
      }

      // dgamma = sum(dy * xhat), dbeta = sum(dy).
      if (gradGamma != null) {
        gradGamma.set(ch, sumDyXhat);
      }
      if (gradBeta != null) {
        gradBeta.set(ch, sumDy);
      }
    }
  }

  /**
   * Computes the gradients of an inference-mode batch norm, where the running statistics are
   * constants: dx = dy * gamma * invStd, dgamma = sum(dy * xhat), dbeta = sum(dy), with invStd = 1
   * / sqrt(runningVar + eps) and xhat = (x - runningMean) * invStd. Overwrites {@code gradInput},
   * and {@code gradGamma} and {@code gradBeta} when they are non-null.
   */
  public static void backwardInference(
      Storage gradOut,
      Storage x,
      int n,
      int c,
      int s,
      Storage gamma,
      Storage runningMean,
      Storage runningVar,
      double eps,
      Storage gradInput,
      Storage gradGamma,
      Storage gradBeta) {
    requireActivation("output gradient", gradOut, n, c, s);
    requireActivation("input", x, n, c, s);
    requireActivation("input gradient", gradInput, n, c, s);
    requireSameDtype(x, gradOut);
    requireSameDtype(x, gradInput);
    requireChannels("gamma", gamma, c);
    requireNonNullChannels("runningMean", runningMean, c);
    requireNonNullChannels("runningVar", runningVar, c);
    requireChannels("gradGamma", gradGamma, c);
    requireChannels("gradBeta", gradBeta, c);

    for (int ch = 0; ch < c; ch++) {
      double mean = runningMean.get(ch);
      double invStd = 1.0 / Math.sqrt(runningVar.get(ch) + eps);
      double scale = invStd * valueOr(gamma, ch, 1.0);
      affine(gradOut, gradInput, n, c, s, ch, scale, 0.0);

      double sumDy = 0;
      double sumDyXhat = 0;
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          double dy = gradOut.get(j);
          sumDy += dy;
          sumDyXhat += dy * (x.get(j) - mean) * invStd;
        }
      }
      if (gradGamma != null) {
        gradGamma.set(ch, sumDyXhat);
      }
      if (gradBeta != null) {
        gradBeta.set(ch, sumDy);
      }
    }
  }

  static double valueOr(Storage storage, int index, double fallback) {
    return storage == null ? fallback : storage.get(index);
  }
}
