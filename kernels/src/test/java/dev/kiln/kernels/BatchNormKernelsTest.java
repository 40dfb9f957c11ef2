package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of batchnorm.cu under CPU emulation and compares them with a double-precision
 * reference of kiln's CPU BatchNormKernels: biased batch variance for normalizing, unbiased
 * variance and PyTorch's momentum rule for the running statistics.
 */
class BatchNormKernelsTest {

  /**
   * Relative tolerance of float32 results, scaled by the largest expected magnitude (at least 1). A
   * channel's sums add at most a few hundred float values, and the input gradient's cancellation of
   * m * dy against sum(dy) and xhat * sum(dy * xhat) keeps that rounding. Under emulation the
   * errors measured below 1e-6; the margin covers the GPU's fused multiply-adds.
   */
  private static final double FLOAT_TOLERANCE = 1e-5;

  private static final float EPS = 1e-5f;
  private static final float MOMENTUM = 0.1f;

  /** Threads per block of the per-channel kernels: three warps, a multiple of 32 as required. */
  private static final int REDUCTION_BLOCK = 96;

  /** Threads per block of the elementwise inference kernel; sizes below are not multiples. */
  private static final int BLOCK = 128;

  private static EmulatedKernels kernels;

  @BeforeAll
  static void loadKernels() {
    kernels = KernelTestSupport.kernels();
  }

  /** The shape [n, c, s] of an activation, where s = H * W for 2d batch norm and 1 for 1d. */
  record Shape(int n, int c, int s) {
    int size() {
      return n * c * s;
    }

    int m() {
      return n * s;
    }

    int channel(int index) {
      return index / s % c;
    }
  }

  static Stream<Shape> shapes() {
    return Stream.of(
        // batch 3 of 5x3 images with 37 channels, more than one block's worth of lanes
        new Shape(3, 37, 15),
        // batch 1 with 3 channels of 11x13: each block strides over 143 values
        new Shape(1, 3, 143),
        // 1d batch norm on [7, 5]: one value per image and channel
        new Shape(7, 5, 1));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void forwardTrainingNormalizesWithBatchStatistics(Shape shape) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      // An offset of 3 makes the mean large compared with the spread, which the two-pass variance
      // handles.
      float[] x = gaussian(support, shape.size(), 3);
      float[] gamma = gaussian(support, shape.c(), 1);
      float[] beta = gaussian(support, shape.c(), 0);
      float[] runningMean = gaussian(support, shape.c(), 0);
      float[] runningVar = gaussian(support, shape.c(), 2);
      Statistics batch = statistics(shape, x);
      MemorySegment out = support.filled(shape.size(), Float.NaN);
      MemorySegment saveMean = support.filled(shape.c(), Float.NaN);
      MemorySegment saveInvStd = support.filled(shape.c(), Float.NaN);
      MemorySegment runningMeanSegment = support.segmentOf(runningMean);
      MemorySegment runningVarSegment = support.segmentOf(runningVar);

      launchPerChannel(
          "kiln_batchnorm_forward_training",
          shape,
          support.segmentOf(x),
          support.segmentOf(gamma),
          support.segmentOf(beta),
          out,
          saveMean,
          saveInvStd,
          runningMeanSegment,
          runningVarSegment,
          shape.n(),
          shape.c(),
          shape.s(),
          EPS,
          MOMENTUM);

      double[] expected = new double[shape.size()];
      for (int i = 0; i < expected.length; i++) {
        int ch = shape.channel(i);
        expected[i] = (x[i] - batch.mean[ch]) * batch.invStd[ch] * gamma[ch] + beta[ch];
      }
      double[] expectedRunningMean = new double[shape.c()];
      double[] expectedRunningVar = new double[shape.c()];
      for (int ch = 0; ch < shape.c(); ch++) {
        double unbiased = batch.biasedVar[ch] * shape.m() / (shape.m() - 1);
        expectedRunningMean[ch] = (1 - MOMENTUM) * runningMean[ch] + MOMENTUM * batch.mean[ch];
        expectedRunningVar[ch] = (1 - MOMENTUM) * runningVar[ch] + MOMENTUM * unbiased;
      }
      assertClose(expected, floats(out), FLOAT_TOLERANCE, "out of " + shape);
      assertClose(batch.mean, floats(saveMean), FLOAT_TOLERANCE, "saved mean of " + shape);
      assertClose(batch.invStd, floats(saveInvStd), FLOAT_TOLERANCE, "saved invStd of " + shape);
      assertClose(
          expectedRunningMean,
          floats(runningMeanSegment),
          FLOAT_TOLERANCE,
          "running mean of " + shape);
      assertClose(
          expectedRunningVar,
          floats(runningVarSegment),
          FLOAT_TOLERANCE,
          "running var of " + shape);
    }
  }

  /** Null gamma and beta mean 1 and 0; null running statistics are left alone. */
  @Test
  void forwardTrainingAcceptsNullAffineAndRunningStatistics() {
    try (KernelTestSupport support = new KernelTestSupport()) {
      Shape shape = new Shape(3, 37, 15);
      float[] x = gaussian(support, shape.size(), 0);
      Statistics batch = statistics(shape, x);
      MemorySegment out = support.filled(shape.size(), Float.NaN);

      launchPerChannel(
          "kiln_batchnorm_forward_training",
          shape,
          support.segmentOf(x),
          MemorySegment.NULL,
          MemorySegment.NULL,
          out,
          support.filled(shape.c(), Float.NaN),
          support.filled(shape.c(), Float.NaN),
          MemorySegment.NULL,
          MemorySegment.NULL,
          shape.n(),
          shape.c(),
          shape.s(),
          EPS,
          MOMENTUM);

      double[] expected = new double[shape.size()];
      for (int i = 0; i < expected.length; i++) {
        int ch = shape.channel(i);
        expected[i] = (x[i] - batch.mean[ch]) * batch.invStd[ch];
      }
      assertClose(expected, floats(out), FLOAT_TOLERANCE, "out without gamma and beta");
    }
  }

  /** The block reduction's tree is fixed, so a grid smaller than the channel count is exact. */
  @Test
  void forwardTrainingIsSameForEveryGridSize() {
    Shape shape = new Shape(3, 37, 15);
    float[][] results = new float[2][];
    int[] grids = {shape.c(), 4};
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = gaussian(support, shape.size(), 0);
      for (int run = 0; run < grids.length; run++) {
        MemorySegment out = support.filled(shape.size(), Float.NaN);
        kernels.launch(
            "kiln_batchnorm_forward_training",
            Dim3.of(grids[run]),
            Dim3.of(REDUCTION_BLOCK),
            0,
            support.segmentOf(x),
            MemorySegment.NULL,
            MemorySegment.NULL,
            out,
            support.filled(shape.c(), Float.NaN),
            support.filled(shape.c(), Float.NaN),
            MemorySegment.NULL,
            MemorySegment.NULL,
            shape.n(),
            shape.c(),
            shape.s(),
            EPS,
            MOMENTUM);
        results[run] = floats(out);
      }
    }
    assertArrayEquals(results[0], results[1], "out with 37 blocks and with 4 blocks");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void forwardInferenceUsesRunningStatistics(Shape shape) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = gaussian(support, shape.size(), 1);
      float[] gamma = gaussian(support, shape.c(), 1);
      float[] beta = gaussian(support, shape.c(), 0);
      float[] runningMean = gaussian(support, shape.c(), 1);
      float[] runningVar = positive(gaussian(support, shape.c(), 0));
      MemorySegment out = support.filled(shape.size(), Float.NaN);

      kernels.launch(
          "kiln_batchnorm_forward_inference",
          Dim3.of(Dim3.blocksFor(shape.size(), BLOCK)),
          Dim3.of(BLOCK),
          0,
          support.segmentOf(x),
          support.segmentOf(gamma),
          support.segmentOf(beta),
          support.segmentOf(runningMean),
          support.segmentOf(runningVar),
          out,
          shape.n(),
          shape.c(),
          shape.s(),
          EPS);

      double[] expected = new double[shape.size()];
      for (int i = 0; i < expected.length; i++) {
        int ch = shape.channel(i);
        double invStd = 1 / Math.sqrt((double) runningVar[ch] + EPS);
        expected[i] = (x[i] - runningMean[ch]) * invStd * gamma[ch] + beta[ch];
      }
      assertClose(expected, floats(out), FLOAT_TOLERANCE, "inference out of " + shape);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void backwardTrainingMatchesReference(Shape shape) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = gaussian(support, shape.size(), 1);
      float[] gradOut = gaussian(support, shape.size(), 0);
      float[] gamma = gaussian(support, shape.c(), 1);
      Statistics batch = statistics(shape, x);
      MemorySegment gradInput = support.filled(shape.size(), Float.NaN);
      MemorySegment gradGamma = support.filled(shape.c(), Float.NaN);
      MemorySegment gradBeta = support.filled(shape.c(), Float.NaN);

      launchPerChannel(
          "kiln_batchnorm_backward_training",
          shape,
          support.segmentOf(gradOut),
          support.segmentOf(x),
          support.segmentOf(gamma),
          support.segmentOf(toFloats(batch.mean)),
          support.segmentOf(toFloats(batch.invStd)),
          gradInput,
          gradGamma,
          gradBeta,
          shape.n(),
          shape.c(),
          shape.s());

      double[] sumDy = new double[shape.c()];
      double[] sumDyXhat = new double[shape.c()];
      for (int i = 0; i < x.length; i++) {
        int ch = shape.channel(i);
        sumDy[ch] += gradOut[i];
        sumDyXhat[ch] += gradOut[i] * (x[i] - batch.mean[ch]) * batch.invStd[ch];
      }
      double m = shape.m();
      double[] expected = new double[shape.size()];
      for (int i = 0; i < x.length; i++) {
        int ch = shape.channel(i);
        double xhat = (x[i] - batch.mean[ch]) * batch.invStd[ch];
        double factor = batch.invStd[ch] * gamma[ch] / m;
        expected[i] = factor * (m * gradOut[i] - sumDy[ch] - xhat * sumDyXhat[ch]);
      }
      assertClose(expected, floats(gradInput), FLOAT_TOLERANCE, "gradInput of " + shape);
      assertClose(sumDyXhat, floats(gradGamma), FLOAT_TOLERANCE, "gradGamma of " + shape);
      assertClose(sumDy, floats(gradBeta), FLOAT_TOLERANCE, "gradBeta of " + shape);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void backwardInferenceMatchesReference(Shape shape) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = gaussian(support, shape.size(), 1);
      float[] gradOut = gaussian(support, shape.size(), 0);
      float[] gamma = gaussian(support, shape.c(), 1);
      float[] runningMean = gaussian(support, shape.c(), 1);
      float[] runningVar = positive(gaussian(support, shape.c(), 0));
      MemorySegment gradInput = support.filled(shape.size(), Float.NaN);
      MemorySegment gradGamma = support.filled(shape.c(), Float.NaN);
      MemorySegment gradBeta = support.filled(shape.c(), Float.NaN);

      launchPerChannel(
          "kiln_batchnorm_backward_inference",
          shape,
          support.segmentOf(gradOut),
          support.segmentOf(x),
          support.segmentOf(gamma),
          support.segmentOf(runningMean),
          support.segmentOf(runningVar),
          gradInput,
          gradGamma,
          gradBeta,
          shape.n(),
          shape.c(),
          shape.s(),
          EPS);

      double[] expected = new double[shape.size()];
      double[] sumDy = new double[shape.c()];
      double[] sumDyXhat = new double[shape.c()];
      for (int i = 0; i < x.length; i++) {
        int ch = shape.channel(i);
        double invStd = 1 / Math.sqrt((double) runningVar[ch] + EPS);
        expected[i] = gradOut[i] * gamma[ch] * invStd;
        sumDy[ch] += gradOut[i];
        sumDyXhat[ch] += gradOut[i] * (x[i] - runningMean[ch]) * invStd;
      }
      assertClose(expected, floats(gradInput), FLOAT_TOLERANCE, "inference gradInput of " + shape);
      assertClose(sumDyXhat, floats(gradGamma), FLOAT_TOLERANCE, "inference gradGamma");
      assertClose(sumDy, floats(gradBeta), FLOAT_TOLERANCE, "inference gradBeta");
    }
  }

  /** Per-channel batch mean, biased variance and 1 / sqrt(biasedVar + EPS), in double. */
  private record Statistics(double[] mean, double[] biasedVar, double[] invStd) {}

  private static Statistics statistics(Shape shape, float[] x) {
    double[] mean = new double[shape.c()];
    double[] biasedVar = new double[shape.c()];
    double[] invStd = new double[shape.c()];
    for (int i = 0; i < x.length; i++) {
      mean[shape.channel(i)] += x[i];
    }
    for (int ch = 0; ch < shape.c(); ch++) {
      mean[ch] /= shape.m();
    }
    for (int i = 0; i < x.length; i++) {
      double d = x[i] - mean[shape.channel(i)];
      biasedVar[shape.channel(i)] += d * d;
    }
    for (int ch = 0; ch < shape.c(); ch++) {
      biasedVar[ch] /= shape.m();
      invStd[ch] = 1 / Math.sqrt(biasedVar[ch] + EPS);
    }
    return new Statistics(mean, biasedVar, invStd);
  }

  /** Launches one block per channel, as the reducing kernels require. */
  private static void launchPerChannel(String kernel, Shape shape, Object... args) {
    kernels.launch(kernel, Dim3.of(shape.c()), Dim3.of(REDUCTION_BLOCK), 0, args);
  }

  /** Returns offset + N(0, 1) values from the support's seeded generator. */
  private static float[] gaussian(KernelTestSupport support, int size, double offset) {
    float[] values = support.gaussianFloats(size);
    for (int i = 0; i < size; i++) {
      values[i] += (float) offset;
    }
    return values;
  }

  /** Maps each value v to 0.5 + |v|, a valid variance. */
  private static float[] positive(float[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = 0.5f + Math.abs(values[i]);
    }
    return result;
  }

  private static float[] toFloats(double[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = (float) values[i];
    }
    return result;
  }

  /** Reads every float of a segment that a test allocated. */
  private static float[] floats(MemorySegment segment) {
    return KernelTestSupport.toFloats(segment, (int) (segment.byteSize() / Float.BYTES));
  }

  /**
   * Asserts each element within tolerance times the largest expected magnitude (at least 1),
   * because a sum's rounding error scales with its terms, not with a result that may be near 0.
   */
  private static void assertClose(
      double[] expected, float[] actual, double tolerance, String description) {
    double scale = 1;
    for (double value : expected) {
      scale = Math.max(scale, Math.abs(value));
    }
    KernelTestSupport.assertClose(description, expected, actual, tolerance * scale, 0);
  }
}
