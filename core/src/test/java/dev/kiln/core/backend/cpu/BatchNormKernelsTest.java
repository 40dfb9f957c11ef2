package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.nanStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.tolerance;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class BatchNormKernelsTest {

  private static final double EPS = 1e-5;
  private static final double MOMENTUM = 0.1;

  /** n, c, s: a 2d batch norm on 7x5 images with batch 2 and 1, and a 1d one with s = 1. */
  private static final int[][] SHAPES = {{2, 3, 35}, {1, 3, 35}, {4, 3, 1}};

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (DType dtype : DType.values()) {
      for (int[] shape : SHAPES) {
        for (boolean affine : new boolean[] {true, false}) {
          cases.add(Arguments.of(dtype, shape[0], shape[1], shape[2], affine));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} [{1}, {2}, {3}] affine={4}")
  @MethodSource("cases")
  void forwardTrainingMatchesTwoPass(DType dtype, int n, int c, int s, boolean affine) {
    Storage x = shiftedStorage(dtype, n * c * s, 1);
    Storage gamma = affine ? randomStorage(dtype, c, 2) : null;
    Storage beta = affine ? randomStorage(dtype, c, 3) : null;
    Storage runningMean = randomStorage(dtype, c, 4);
    Storage runningVar = positiveStorage(dtype, c, 5);
    double[] oldMean = KernelAsserts.values(runningMean);
    double[] oldVar = KernelAsserts.values(runningVar);
    Storage out = nanStorage(dtype, n * c * s);
    double[] saveMean = new double[c];
    double[] saveInvStd = new double[c];

    BatchNormKernels.forwardTraining(
        x, n, c, s, gamma, beta, EPS, out, saveMean, saveInvStd, runningMean, runningVar, MOMENTUM);

    int m = n * s;
    double[] mean = new double[c];
    double[] var = new double[c];
    twoPassStatistics(x, n, c, s, mean, var);
    double[] expectedOut = new double[n * c * s];
    double[] expectedInvStd = new double[c];
    double[] expectedRunningMean = new double[c];
    double[] expectedRunningVar = new double[c];
    for (int ch = 0; ch < c; ch++) {
      expectedInvStd[ch] = 1 / Math.sqrt(var[ch] + EPS);
      expectedRunningMean[ch] = (1 - MOMENTUM) * oldMean[ch] + MOMENTUM * mean[ch];
      expectedRunningVar[ch] = (1 - MOMENTUM) * oldVar[ch] + MOMENTUM * var[ch] * m / (m - 1.0);
    }
    for (int i = 0; i < expectedOut.length; i++) {
      int ch = (i / s) % c;
      double g = gamma == null ? 1 : gamma.get(ch);
      double b = beta == null ? 0 : beta.get(ch);
      expectedOut[i] = (x.get(i) - mean[ch]) * expectedInvStd[ch] * g + b;
    }
    double tolerance = tolerance(dtype);
    assertAllClose(expectedOut, out, tolerance, "out");
    assertAllClose(mean, saveMean, tolerance, "saveMean");
    assertAllClose(expectedInvStd, saveInvStd, tolerance, "saveInvStd");
    assertAllClose(expectedRunningMean, runningMean, tolerance, "runningMean");
    assertAllClose(expectedRunningVar, runningVar, tolerance, "runningVar");
  }

  @ParameterizedTest(name = "{0} [{1}, {2}, {3}] affine={4}")
  @MethodSource("cases")
  void forwardInferenceUsesRunningStatistics(DType dtype, int n, int c, int s, boolean affine) {
    Storage x = randomStorage(dtype, n * c * s, 6);
    Storage gamma = affine ? randomStorage(dtype, c, 7) : null;
    Storage beta = affine ? randomStorage(dtype, c, 8) : null;
    Storage runningMean = randomStorage(dtype, c, 9);
    Storage runningVar = positiveStorage(dtype, c, 10);
    Storage out = nanStorage(dtype, n * c * s);

    BatchNormKernels.forwardInference(x, n, c, s, gamma, beta, runningMean, runningVar, EPS, out);

    double[] expected = new double[n * c * s];
    for (int i = 0; i < expected.length; i++) {
      int ch = (i / s) % c;
      double g = gamma == null ? 1 : gamma.get(ch);
      double b = beta == null ? 0 : beta.get(ch);
      expected[i] = (x.get(i) - runningMean.get(ch)) / Math.sqrt(runningVar.get(ch) + EPS) * g + b;
    }
    assertAllClose(expected, out, tolerance(dtype), "out");
  }

  @ParameterizedTest(name = "{0} [{1}, {2}, {3}] affine={4}")
  @MethodSource("cases")
  void backwardTrainingMatchesJacobian(DType dtype, int n, int c, int s, boolean affine) {
    Storage x = shiftedStorage(dtype, n * c * s, 11);
    Storage gradOut = randomStorage(dtype, n * c * s, 12);
    Storage gamma = affine ? randomStorage(dtype, c, 13) : null;
    double[] mean = new double[c];
    double[] var = new double[c];
    twoPassStatistics(x, n, c, s, mean, var);
    double[] invStd = new double[c];
    for (int ch = 0; ch < c; ch++) {
      invStd[ch] = 1 / Math.sqrt(var[ch] + EPS);
    }
    Storage gradInput = nanStorage(dtype, n * c * s);
    Storage gradGamma = nanStorage(dtype, c);
    Storage gradBeta = nanStorage(dtype, c);

    BatchNormKernels.backwardTraining(
        gradOut, x, n, c, s, gamma, mean, invStd, gradInput, gradGamma, gradBeta);

    // Jacobian of y_j = gamma * xhat_j + beta within one channel of m values:
    // dy_j / dx_i = gamma * invStd * (delta_ij - 1 / m - xhat_i * xhat_j / m).
    int m = n * s;
    double[] expected = new double[n * c * s];
    double[] expectedGamma = new double[c];
    double[] expectedBeta = new double[c];
    for (int i = 0; i < expected.length; i++) {
      int ch = (i / s) % c;
      double g = gamma == null ? 1 : gamma.get(ch);
      double xhatI = (x.get(i) - mean[ch]) * invStd[ch];
      for (int j = 0; j < expected.length; j++) {
        if ((j / s) % c != ch) {
          continue;
        }
        double xhatJ = (x.get(j) - mean[ch]) * invStd[ch];
        double delta = i == j ? 1 : 0;
        expected[i] += gradOut.get(j) * g * invStd[ch] * (delta - 1.0 / m - xhatI * xhatJ / m);
      }
      expectedGamma[ch] += gradOut.get(i) * xhatI;
      expectedBeta[ch] += gradOut.get(i);
    }
    assertAllClose(expected, gradInput, tolerance(dtype), "gradInput");
    assertAllClose(expectedGamma, gradGamma, tolerance(dtype), "gradGamma");
    assertAllClose(expectedBeta, gradBeta, tolerance(dtype), "gradBeta");
  }

  @ParameterizedTest(name = "{0} [{1}, {2}, {3}] affine={4}")
  @MethodSource("cases")
  void backwardInferenceTreatsStatisticsAsConstants(
      DType dtype, int n, int c, int s, boolean affine) {
    Storage x = randomStorage(dtype, n * c * s, 14);
    Storage gradOut = randomStorage(dtype, n * c * s, 15);
    Storage gamma = affine ? randomStorage(dtype, c, 16) : null;
    Storage runningMean = randomStorage(dtype, c, 17);
    Storage runningVar = positiveStorage(dtype, c, 18);
    Storage gradInput = nanStorage(dtype, n * c * s);
    Storage gradGamma = nanStorage(dtype, c);
    Storage gradBeta = nanStorage(dtype, c);

    BatchNormKernels.backwardInference(
        gradOut, x, n, c, s, gamma, runningMean, runningVar, EPS, gradInput, gradGamma, gradBeta);

    double[] expected = new double[n * c * s];
    double[] expectedGamma = new double[c];
    double[] expectedBeta = new double[c];
    for (int i = 0; i < expected.length; i++) {
      int ch = (i / s) % c;
      double g = gamma == null ? 1 : gamma.get(ch);
      double invStd = 1 / Math.sqrt(runningVar.get(ch) + EPS);
      expected[i] = gradOut.get(i) * g * invStd;
      expectedGamma[ch] += gradOut.get(i) * (x.get(i) - runningMean.get(ch)) * invStd;
      expectedBeta[ch] += gradOut.get(i);
    }
    assertAllClose(expected, gradInput, tolerance(dtype), "gradInput");
    assertAllClose(expectedGamma, gradGamma, tolerance(dtype), "gradGamma");
    assertAllClose(expectedBeta, gradBeta, tolerance(dtype), "gradBeta");
  }

  @Test
  void forwardTrainingSingleValueRejected() {
    Storage x = Storage.allocate(DType.FLOAT32, 3);
    Storage out = Storage.allocate(DType.FLOAT32, 3);
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                BatchNormKernels.forwardTraining(
                    x,
                    1,
                    3,
                    1,
                    null,
                    null,
                    EPS,
                    out,
                    new double[3],
                    new double[3],
                    null,
                    null,
                    MOMENTUM));
    assertEquals(
        "expected more than 1 value per channel when training, got input of shape [1, 3, 1]: use"
            + " a batch larger than 1 or evaluation mode",
        error.getMessage());
  }

  @Test
  void forwardInferenceMissingRunningVarRejected() {
    Storage x = Storage.allocate(DType.FLOAT64, 6);
    Storage out = Storage.allocate(DType.FLOAT64, 6);
    Storage runningMean = Storage.allocate(DType.FLOAT64, 3);
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                BatchNormKernels.forwardInference(
                    x, 2, 3, 1, null, null, runningMean, null, EPS, out));
    assertEquals(
        "batch norm runningVar is missing: inference mode needs the running statistics",
        error.getMessage());
  }

  /** Random values around 3 with spread 1, so the mean matters and a one-pass sum would drift. */
  private static Storage shiftedStorage(DType dtype, int size, long seed) {
    Storage storage = randomStorage(dtype, size, seed);
    for (int i = 0; i < size; i++) {
      storage.set(i, storage.get(i) + 3);
    }
    return storage;
  }

  private static Storage positiveStorage(DType dtype, int size, long seed) {
    Storage storage = randomStorage(dtype, size, seed);
    for (int i = 0; i < size; i++) {
      storage.set(i, 0.5 + Math.abs(storage.get(i)));
    }
    return storage;
  }

  /** Mean and biased variance per channel, by the two-pass definition in float64. */
  private static void twoPassStatistics(
      Storage x, int n, int c, int s, double[] mean, double[] var) {
    int m = n * s;
    for (int i = 0; i < x.size(); i++) {
      mean[(i / s) % c] += x.get(i) / m;
    }
    for (int i = 0; i < x.size(); i++) {
      double d = x.get(i) - mean[(i / s) % c];
      var[(i / s) % c] += d * d / m;
    }
  }
}
