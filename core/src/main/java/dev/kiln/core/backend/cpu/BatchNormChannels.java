package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;

/**
 * The per-channel loops of the batch norm kernels, over the input viewed as [n, c, s]: channel ch
 * of sample i is the s contiguous values that start at (i * c + ch) * s. Each loop reads and writes
 * one channel, so callers can split the channels over threads.
 */
final class BatchNormChannels {

  private BatchNormChannels() {}

  /** Returns the sum over channel ch of x, in double. */
  static double channelSum(Storage x, int n, int c, int s, int ch) {
    double sum = 0;
    if (x instanceof Storage.F32) {
      float[] data = x.floats();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          sum += data[j];
        }
      }
    } else {
      double[] data = x.doubles();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          sum += data[j];
        }
      }
    }
    return sum;
  }

  /** Returns the sum over channel ch of (x - mean)^2, in double. */
  static double channelSquaredDeviation(Storage x, int n, int c, int s, int ch, double mean) {
    double sum = 0;
    if (x instanceof Storage.F32) {
      float[] data = x.floats();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          double d = data[j] - mean;
          sum += d * d;
        }
      }
    } else {
      double[] data = x.doubles();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          double d = data[j] - mean;
          sum += d * d;
        }
      }
    }
    return sum;
  }

  /** Overwrites channel ch of {@code out} with input * scale + shift. */
  static void affine(
      Storage input, Storage out, int n, int c, int s, int ch, double scale, double shift) {
    if (input instanceof Storage.F32) {
      float[] src = input.floats();
      float[] dst = out.floats();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          dst[j] = (float) (src[j] * scale + shift);
        }
      }
    } else {
      double[] src = input.doubles();
      double[] dst = out.doubles();
      for (int i = 0; i < n; i++) {
        int start = (i * c + ch) * s;
        for (int j = start; j < start + s; j++) {
          dst[j] = src[j] * scale + shift;
        }
      }
    }
  }
}
