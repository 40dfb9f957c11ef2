package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.VendorContractSupport.BATCH_NORM;
import static dev.kiln.core.backend.device.VendorContractSupport.nans;
import static dev.kiln.core.backend.device.VendorContractSupport.toFloats;

import dev.kiln.core.backend.cuda.libraries.Nchw;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.device.VendorContractSupport.Bindings;
import dev.kiln.core.backend.device.VendorContractSupport.Buffers;
import dev.kiln.core.backend.device.VendorContractSupport.ForEachBinding;
import dev.kiln.core.backend.device.VendorContractSupport.Opened;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;

/**
 * Checks the batch norm calls of {@link VendorDnn} against float64 statistics, for each binding of
 * {@link VendorContractSupport}: the training forward with its saved and running statistics, the
 * inference forward and the backward from saved statistics.
 */
class VendorBatchNormGpuTest {
  private static final Bindings BINDINGS = new Bindings(VendorBatchNormGpuTest.class);

  private final Random random = new Random(DeviceTestSupport.SEED);

  @AfterAll
  static void closeBindings() {
    BINDINGS.close();
  }

  @ForEachBinding
  void batchNormTraining(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    try (Buffers buffers = new Buffers(opened.memory())) {
      int channels = c.shape.c();
      long y = buffers.of(nans(c.x.length));
      long runningMean = buffers.of(c.runningMean);
      long runningVariance = buffers.of(c.runningVariance);
      long saveMean = buffers.of(nans(channels));
      long saveInvStd = buffers.of(nans(channels));

      dnn.batchNormForwardTraining(
          c.shape,
          buffers.of(c.x),
          y,
          buffers.of(c.scale),
          buffers.of(c.bias),
          BatchNormCase.MOMENTUM,
          BatchNormCase.EPSILON,
          runningMean,
          runningVariance,
          saveMean,
          saveInvStd);

      assertClose(
          binding, "normalized output", c.trainingY(), buffers.read(y, c.x.length), BATCH_NORM);
      assertClose(binding, "saved mean", c.mean, buffers.read(saveMean, channels), BATCH_NORM);
      assertClose(
          binding, "saved inverse std", c.invStd(), buffers.read(saveInvStd, channels), BATCH_NORM);
      assertClose(
          binding,
          "running mean, momentum " + BatchNormCase.MOMENTUM,
          c.updatedRunningMean(),
          buffers.read(runningMean, channels),
          BATCH_NORM);
      assertClose(
          binding,
          "running variance (unbiased), momentum " + BatchNormCase.MOMENTUM,
          c.updatedRunningVariance(),
          buffers.read(runningVariance, channels),
          BATCH_NORM);
    }
  }

  @ForEachBinding
  void batchNormInference(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    try (Buffers buffers = new Buffers(opened.memory())) {
      long y = buffers.of(nans(c.x.length));

      dnn.batchNormForwardInference(
          c.shape,
          buffers.of(c.x),
          y,
          buffers.of(c.scale),
          buffers.of(c.bias),
          buffers.of(c.runningMean),
          buffers.of(c.runningVariance),
          BatchNormCase.EPSILON);

      assertClose(
          binding, "inference output", c.inferenceY(), buffers.read(y, c.x.length), BATCH_NORM);
    }
  }

  @ForEachBinding
  void batchNormBackward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    int channels = c.shape.c();
    // The saved statistics are the reference's, rounded to float32 as a forward pass stores them.
    float[] saveMean = toFloats(c.mean);
    float[] saveInvStd = toFloats(c.invStd());
    try (Buffers buffers = new Buffers(opened.memory())) {
      long dx = buffers.of(nans(c.x.length));
      long dScale = buffers.of(nans(channels));
      long dBias = buffers.of(nans(channels));

      dnn.batchNormBackward(
          c.shape,
          buffers.of(c.x),
          buffers.of(c.dy),
          dx,
          buffers.of(c.scale),
          dScale,
          dBias,
          BatchNormCase.EPSILON,
          buffers.of(saveMean),
          buffers.of(saveInvStd));

      double[][] expected = c.backward(saveMean, saveInvStd);
      assertClose(binding, "input gradient", expected[0], buffers.read(dx, c.x.length), BATCH_NORM);
      assertClose(
          binding, "scale gradient", expected[1], buffers.read(dScale, channels), BATCH_NORM);
      assertClose(binding, "bias gradient", expected[2], buffers.read(dBias, channels), BATCH_NORM);
    }
  }

  // Reference.

  /**
   * A batch norm input of shape [3, 4, 5, 4] with a different mean per channel, and its statistics
   * in float64. Each channel has m = 3 * 5 * 4 = 60 elements.
   */
  private record BatchNormCase(
      Nchw shape,
      float[] x,
      float[] dy,
      float[] scale,
      float[] bias,
      float[] runningMean,
      float[] runningVariance,
      double[] mean,
      double[] variance) {

    /** Epsilon, large enough that a call which leaves it out gives visibly different results. */
    static final double EPSILON = 1e-3;

    /** Weight of the batch statistic, away from 0.5 so that swapping it with 1 - momentum shows. */
    static final double MOMENTUM = 0.25;

    static BatchNormCase random(Random random) {
      Nchw shape = new Nchw(3, 4, 5, 4);
      int channels = shape.c();
      int plane = shape.h() * shape.w();
      float[] x = DeviceTestSupport.randomFloats(random, shape.elements());
      for (int e = 0; e < x.length; e++) {
        x[e] += 0.5f * (e / plane % channels) - 0.75f;
      }

      float[] scale = new float[channels];
      for (int c = 0; c < channels; c++) {
        scale[c] = 0.5f + random.nextFloat();
      }
      float[] runningVariance = new float[channels];
      for (int c = 0; c < channels; c++) {
        runningVariance[c] = 0.5f + random.nextFloat();
      }

      double[] mean = new double[channels];
      double[] variance = new double[channels];
      double m = shape.n() * plane;
      for (int e = 0; e < x.length; e++) {
        mean[e / plane % channels] += x[e] / m;
      }
      for (int e = 0; e < x.length; e++) {
        int c = e / plane % channels;
        variance[c] += (x[e] - mean[c]) * (x[e] - mean[c]) / m;
      }

      return new BatchNormCase(
          shape,
          x,
          DeviceTestSupport.randomFloats(random, x.length),
          scale,
          DeviceTestSupport.randomFloats(random, channels),
          DeviceTestSupport.randomFloats(random, channels),
          runningVariance,
          mean,
          variance);
    }

    int channelOf(int element) {
      return element / (shape.h() * shape.w()) % shape.c();
    }

    /** Returns 1 / sqrt(biased batch variance + epsilon) per channel. */
    double[] invStd() {
      double[] result = new double[variance.length];
      for (int c = 0; c < result.length; c++) {
        result[c] = 1 / Math.sqrt(variance[c] + EPSILON);
      }
      return result;
    }

    double[] trainingY() {
      double[] invStd = invStd();
      double[] y = new double[x.length];
      for (int e = 0; e < x.length; e++) {
        int c = channelOf(e);
        y[e] = (x[e] - mean[c]) * invStd[c] * scale[c] + bias[c];
      }
      return y;
    }

    double[] inferenceY() {
      double[] y = new double[x.length];
      for (int e = 0; e < x.length; e++) {
        int c = channelOf(e);
        y[e] =
            (x[e] - runningMean[c]) / Math.sqrt(runningVariance[c] + EPSILON) * scale[c] + bias[c];
      }
      return y;
    }

    double[] updatedRunningMean() {
      double[] result = new double[mean.length];
      for (int c = 0; c < result.length; c++) {
        result[c] = (1 - MOMENTUM) * runningMean[c] + MOMENTUM * mean[c];
      }
      return result;
    }

    /**
     * Returns the running variance updated with the unbiased batch variance, m / (m - 1) times the
     * biased one.
     */
    double[] updatedRunningVariance() {
      double m = (double) x.length / shape.c();
      double[] result = new double[variance.length];
      for (int c = 0; c < result.length; c++) {
        result[c] = (1 - MOMENTUM) * runningVariance[c] + MOMENTUM * variance[c] * m / (m - 1);
      }
      return result;
    }

    /**
     * Returns {dx, dScale, dBias} from the saved statistics: with xhat = (x - mean) invStd, dBias =
     * sum dy, dScale = sum dy xhat, and dx = scale invStd / m (m dy - dBias - xhat dScale).
     */
    double[][] backward(float[] saveMean, float[] saveInvStd) {
      int channels = shape.c();
      double m = (double) x.length / channels;
      double[] dScale = new double[channels];
      double[] dBias = new double[channels];
      double[] xhat = new double[x.length];
      for (int e = 0; e < x.length; e++) {
        int c = channelOf(e);
        xhat[e] = (x[e] - (double) saveMean[c]) * saveInvStd[c];
        dBias[c] += dy[e];
        dScale[c] += dy[e] * xhat[e];
      }
      double[] dx = new double[x.length];
      for (int e = 0; e < x.length; e++) {
        int c = channelOf(e);
        dx[e] =
            scale[c] * (double) saveInvStd[c] / m * (m * dy[e] - dBias[c] - xhat[e] * dScale[c]);
      }
      return new double[][] {dx, dScale, dBias};
    }
  }
}
