package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * Float32 loop of the batch norm backward pass that {@link BatchNormKernels#backwardTraining} runs
 * per channel, on threads over the channels. It computes the same double expressions in the same
 * order as {@link BatchNormKernels#backwardTrainingPlain}, so its results are bit-identical to that
 * reference; it is faster because it reads and writes the raw arrays instead of calling {@link
 * Storage#get} and {@link Storage#set} per element.
 */
final class FastBatchNorm {

  private FastBatchNorm() {}

  /**
   * Overwrites channel {@code ch} of {@code dx}, and element ch of {@code gradGamma} and {@code
   * gradBeta} when they are non-null, with the training-mode gradients. Arrays are [n, c, s].
   */
  static void backwardChannel(
      float[] dy,
      float[] x,
      int n,
      int c,
      int s,
      int ch,
      Storage gamma,
      double[] saveMean,
      double[] saveInvStd,
      float[] dx,
      Storage gradGamma,
      Storage gradBeta) {
    long m = (long) n * s;
    double mean = saveMean[ch];
    double invStd = saveInvStd[ch];
    double sumDy = 0;
    double sumDyXhat = 0;
    for (int i = 0; i < n; i++) {
      int start = (i * c + ch) * s;
      for (int j = start; j < start + s; j++) {
        double g = dy[j];
        sumDy += g;
        sumDyXhat += g * (x[j] - mean) * invStd;
      }
    }

    // dx = invStd * gamma / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
    double factor = invStd * BatchNormKernels.valueOr(gamma, ch, 1.0) / m;
    for (int i = 0; i < n; i++) {
      int start = (i * c + ch) * s;
      for (int j = start; j < start + s; j++) {
        double xhat = (x[j] - mean) * invStd;
        double g = dy[j];
        dx[j] = (float) (factor * (m * g - sumDy - xhat * sumDyXhat));
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
