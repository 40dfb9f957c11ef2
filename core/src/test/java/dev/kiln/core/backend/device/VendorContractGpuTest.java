package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.CudaContext;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.CublasDirect;
import dev.kiln.core.backend.cuda.libraries.CudnnDirect;
import dev.kiln.core.backend.cuda.libraries.JcublasBlas;
import dev.kiln.core.backend.cuda.libraries.JcudnnDnn;
import dev.kiln.core.backend.cuda.libraries.LibraryDiscovery;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.cuda.libraries.Nchw;
import dev.kiln.core.backend.cuda.libraries.VendorBinding;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.cuda.libraries.VendorDevice;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.cuda.libraries.VendorDnn.ActivationMode;
import dev.kiln.core.backend.cuda.libraries.VendorDnn.PoolingMode;
import dev.kiln.core.backend.cuda.libraries.VendorLibrary;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Checks every call of {@link VendorBlas} and {@link VendorDnn} against float64 loops written in
 * this class, for each binding: the host stand-ins of {@link HostStandInVendors} on the emulated
 * device, JCublas and JCudnn on {@code cuda:0}, and the direct {@code java.lang.foreign} bindings
 * on {@code cuda:0}.
 *
 * <p>The stand-in run needs no GPU, so it runs everywhere and checks the test itself: its
 * references, its checks and its tolerances. The two GPU runs then hold cuBLAS and cuDNN to the
 * same contract. A GPU binding that cannot run is skipped with the reason, which is the CUDA
 * availability check's message or the loader's {@link LibraryLoadException} message, and the reason
 * is also printed once.
 *
 * <p>The references never share code with the stand-ins, which compute with kiln's CPU kernels.
 * Every output buffer starts as NaN, so an element that a call forgot to write fails the
 * comparison, except where {@code accumulate} or beta = 1 requires a real starting value.
 *
 * <h2>Tolerances</h2>
 *
 * <p>Each tolerance is |actual - expected| &lt;= relative * |expected| + absolute, against a
 * float64 reference computed from the same float32 inputs. The inputs have magnitude at most 1,
 * except the activation inputs (up to 4) and the batch norm input (up to 1.75).
 *
 * <ul>
 *   <li>{@link DeviceTestSupport#ROUNDED}: one or two rounded float32 operations, as in dropout's x
 *       / (1 - p) and its gradient.
 *   <li>{@link DeviceTestSupport#SUMMED}: float32 sums of at most a few hundred terms, which drift
 *       by about (terms * 6e-8) of the terms' magnitude: the products, the pooling windows and the
 *       bias gradient.
 *   <li>{@link #CONVOLUTION}, {@link #BATCH_NORM} and {@link #ACTIVATION}: see their comments.
 * </ul>
 */
class VendorContractGpuTest {

  /**
   * Tolerance of cuDNN's convolutions. kiln requests {@code CUDNN_FMA_MATH}, so nothing is rounded
   * to TF32, but cuDNN may choose an implicit GEMM, a Winograd or an FFT algorithm. Winograd and
   * FFT transform the operands before they sum, and their float32 error grows with the transform's
   * constants rather than with the number of terms. The sums here have at most 72 terms of
   * magnitude below 1, so plain summation errs by less than about 5e-6. 1e-4 leaves room for the
   * transforms, while a wrong index or a missing accumulate moves most results by more than 1e-2.
   * NOTE: the 1e-4 is an estimate until these tests run on a GPU.
   */
  private static final DeviceTestSupport.Tolerance CONVOLUTION =
      new DeviceTestSupport.Tolerance(1e-4, 1e-4);

  /**
   * Tolerance of batch normalization. The mean and variance are float32 sums over the 60 elements
   * of a channel (error about 60 * 6e-8 = 4e-6 relative), and every output is that error scaled by
   * the inverse standard deviation (below 2 here) and the scale. 5e-5 covers it with room and still
   * detects an epsilon of 1e-3 that was left out (1.5e-3 relative) or an unbiased variance in place
   * of the biased one (8e-3 relative).
   */
  private static final DeviceTestSupport.Tolerance BATCH_NORM =
      new DeviceTestSupport.Tolerance(5e-5, 5e-5);

  /**
   * Tolerance of the activations. A GPU library may evaluate exp and tanh with fast intrinsics that
   * err by a few units in the last place (about 3e-7 relative). It may also build tanh from exp,
   * which near 0 leaves an absolute error of a few units in the last place of 1 (6e-8 each).
   */
  private static final DeviceTestSupport.Tolerance ACTIVATION =
      new DeviceTestSupport.Tolerance(1e-5, 1e-6);

  private static final String STAND_IN = "stand-in on emulated";
  private static final String JCUDA = "jcuda on cuda:0";
  private static final String DIRECT = "direct on cuda:0";

  /** The bindings, each opened on first use and kept for the whole class. */
  private static final Map<String, Opened> OPENED = new LinkedHashMap<>();

  /** Convolution shapes: one strided, padded and dilated with odd sizes, and a padded 3x3. */
  private static final List<Conv2dGeometry> CONVOLUTIONS =
      List.of(
          new Conv2dGeometry(2, 3, 9, 7, 4, 3, 3, 2, 1, 1, 2, 2, 1),
          new Conv2dGeometry(2, 5, 6, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1));

  /**
   * Pooling shape with overlapping windows (stride below the window), padding that lets the two
   * averages differ at the borders, and different sizes along height and width.
   */
  private static final Pool2dGeometry POOLING = new Pool2dGeometry(2, 3, 7, 6, 3, 2, 2, 1, 1, 1);

  private final Random random = new Random(DeviceTestSupport.SEED);

  static Stream<Named<String>> bindings() {
    return Stream.of(STAND_IN, JCUDA, DIRECT).map(name -> Named.of(name, name));
  }

  // cuBLAS.

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void sgemmColumnMajor(String binding) {
    Opened opened = open(binding);
    VendorBlas blas = opened.blas();
    int m = 5;
    int n = 7;
    int k = 3;
    try (Buffers buffers = new Buffers(opened.memory)) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, -0.5f}) {
            // Stored column-major with leading dimensions above the row count, so that a binding
            // that ignores lda, ldb or ldc reads or writes the wrong elements.
            Matrix a = Matrix.random(random, transA ? k : m, transA ? m : k, 2);
            Matrix b = Matrix.random(random, transB ? n : k, transB ? k : n, 1);
            Matrix c = Matrix.random(random, m, n, 3);
            float[] start = beta == 0 ? c.withNaN() : c.values;
            long dc = buffers.of(start);

            blas.sgemm(
                transA,
                transB,
                m,
                n,
                k,
                1.5f,
                buffers.of(a.values),
                a.ld,
                buffers.of(b.values),
                b.ld,
                beta,
                dc,
                c.ld);

            double[] expected = Matrix.product(a, transA, b, transB, c, m, n, k, 1.5, beta);
            String label = "sgemm transA=" + transA + " transB=" + transB + " beta=" + beta;
            assertClose(binding, label, expected, buffers.read(dc, start.length), SUMMED);
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void sgemmRowMajor(String binding) {
    Opened opened = open(binding);
    VendorBlas blas = opened.blas();
    int m = 4;
    int n = 6;
    int k = 5;
    try (Buffers buffers = new Buffers(opened.memory)) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, 1f}) {
            float[] a = DeviceTestSupport.randomFloats(random, m * k);
            float[] b = DeviceTestSupport.randomFloats(random, k * n);
            float[] c = DeviceTestSupport.randomFloats(random, m * n);
            long dc = buffers.of(beta == 0 ? nans(m * n) : c);

            blas.sgemmRowMajor(
                transA, transB, m, n, k, 0.5f, buffers.of(a), buffers.of(b), beta, dc);

            // Row-major: op(A)[i][p] is a[i * k + p], or a[p * m + i] where A is stored as k x m.
            double[] expected = new double[m * n];
            for (int i = 0; i < m; i++) {
              for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                  double left = transA ? a[p * m + i] : a[i * k + p];
                  double right = transB ? b[j * k + p] : b[p * n + j];
                  sum += left * right;
                }
                expected[i * n + j] = 0.5 * sum + (beta == 0 ? 0 : beta * c[i * n + j]);
              }
            }
            String label = "row-major sgemm transA=" + transA + " transB=" + transB;
            assertClose(
                binding, label + " beta=" + beta, expected, buffers.read(dc, m * n), SUMMED);
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void sgemmStridedBatched(String binding) {
    Opened opened = open(binding);
    VendorBlas blas = opened.blas();
    int m = 3;
    int n = 5;
    int k = 4;
    int batch = 3;
    try (Buffers buffers = new Buffers(opened.memory)) {
      for (boolean transA : new boolean[] {false, true}) {
        for (boolean transB : new boolean[] {false, true}) {
          for (float beta : new float[] {0f, 2f}) {
            Matrix a = Matrix.random(random, transA ? k : m, transA ? m : k, 1);
            Matrix b = Matrix.random(random, transB ? n : k, transB ? k : n, 2);
            Matrix c = Matrix.random(random, m, n, 1);
            // Each batch's matrices are followed by a gap of 3 to 5 elements. The gaps and the
            // rows below m in C hold values that the call must leave alone.
            int strideA = a.values.length + 3;
            int strideB = b.values.length + 4;
            int strideC = c.values.length + 5;
            float[] as = DeviceTestSupport.randomFloats(random, strideA * batch);
            float[] bs = DeviceTestSupport.randomFloats(random, strideB * batch);
            float[] cs = DeviceTestSupport.randomFloats(random, strideC * batch);
            for (int i = 0; i < batch; i++) {
              for (int e = 0; e < c.values.length; e++) {
                if (beta == 0 && e % c.ld < m) {
                  cs[i * strideC + e] = Float.NaN;
                }
              }
            }
            long dc = buffers.of(cs);

            blas.sgemmStridedBatched(
                transA,
                transB,
                m,
                n,
                k,
                -1.25f,
                buffers.of(as),
                a.ld,
                strideA,
                buffers.of(bs),
                b.ld,
                strideB,
                beta,
                dc,
                c.ld,
                strideC,
                batch);

            double[] expected = toDoubles(cs);
            for (int i = 0; i < batch; i++) {
              Matrix ai = Matrix.slice(as, i * strideA, a);
              Matrix bi = Matrix.slice(bs, i * strideB, b);
              Matrix ci = Matrix.slice(cs, i * strideC, c);
              double[] one = Matrix.product(ai, transA, bi, transB, ci, m, n, k, -1.25, beta);
              System.arraycopy(one, 0, expected, i * strideC, one.length);
            }
            String label = "strided batch transA=" + transA + " transB=" + transB + " beta=" + beta;
            assertClose(binding, label, expected, buffers.read(dc, cs.length), SUMMED);
          }
        }
      }
    }
  }

  // cuDNN convolution.

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void convolutionForward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      try (Buffers buffers = new Buffers(opened.memory)) {
        long y = buffers.of(nans(g.outputSize()));

        dnn.convolutionForward(g, buffers.of(c.x), buffers.of(c.w), y);

        assertClose(binding, "output of " + g, c.y, buffers.read(y, g.outputSize()), CONVOLUTION);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void convolutionBackwardData(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory)) {
          float[] start = startOf(accumulate, g.inputSize());
          long dx = buffers.of(start);

          dnn.convolutionBackwardData(g, buffers.of(c.w), buffers.of(c.dy), dx, accumulate);

          assertClose(
              binding,
              "input gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.dx),
              buffers.read(dx, g.inputSize()),
              CONVOLUTION);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void convolutionBackwardFilter(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory)) {
          float[] start = startOf(accumulate, g.weightSize());
          long dw = buffers.of(start);

          dnn.convolutionBackwardFilter(g, buffers.of(c.x), buffers.of(c.dy), dw, accumulate);

          assertClose(
              binding,
              "weight gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.dw),
              buffers.read(dw, g.weightSize()),
              CONVOLUTION);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void convolutionBackwardBias(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    for (Conv2dGeometry g : CONVOLUTIONS) {
      ConvolutionCase c = ConvolutionCase.random(random, g);
      for (boolean accumulate : new boolean[] {false, true}) {
        try (Buffers buffers = new Buffers(opened.memory)) {
          float[] start = startOf(accumulate, g.outChannels());
          long db = buffers.of(start);

          dnn.convolutionBackwardBias(g, buffers.of(c.dy), db, accumulate);

          assertClose(
              binding,
              "bias gradient of " + g + " accumulate=" + accumulate,
              plus(accumulate, start, c.db),
              buffers.read(db, g.outChannels()),
              SUMMED);
        }
      }
    }
  }

  // cuDNN pooling.

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void poolingForward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    Pool2dGeometry g = POOLING;
    float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
    for (PoolingMode mode : PoolingMode.values()) {
      try (Buffers buffers = new Buffers(opened.memory)) {
        long y = buffers.of(nans(g.outputSize()));

        dnn.poolingForward(mode, g, buffers.of(x), y);

        PoolingCase expected = PoolingCase.of(mode, g, x, new float[g.outputSize()]);
        assertClose(binding, mode + " output", expected.y, buffers.read(y, g.outputSize()), SUMMED);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void poolingBackward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    Pool2dGeometry g = POOLING;
    float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
    float[] dy = DeviceTestSupport.randomFloats(random, g.outputSize());
    for (PoolingMode mode : PoolingMode.values()) {
      PoolingCase expected = PoolingCase.of(mode, g, x, dy);
      try (Buffers buffers = new Buffers(opened.memory)) {
        long dx = buffers.of(nans(g.inputSize()));

        // cuDNN may locate each window's maximum by comparing x with y, so y must be the exact
        // forward output. A maximum is an element of x, so its float32 value is exact.
        dnn.poolingBackward(
            mode, g, buffers.of(x), buffers.of(toFloats(expected.y)), buffers.of(dy), dx);

        assertClose(
            binding,
            mode + " input gradient",
            expected.dx,
            buffers.read(dx, g.inputSize()),
            SUMMED);
      }
    }
  }

  // cuDNN batch norm.

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void batchNormTraining(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    try (Buffers buffers = new Buffers(opened.memory)) {
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

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void batchNormInference(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    try (Buffers buffers = new Buffers(opened.memory)) {
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

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void batchNormBackward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    BatchNormCase c = BatchNormCase.random(random);
    int channels = c.shape.c();
    // The saved statistics are the reference's, rounded to float32 as a forward pass stores them.
    float[] saveMean = toFloats(c.mean);
    float[] saveInvStd = toFloats(c.invStd());
    try (Buffers buffers = new Buffers(opened.memory)) {
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

  // cuDNN dropout.

  /** Elements per dropout call: enough for a tight bound on the kept fraction. */
  private static final int DROPOUT_ELEMENTS = 10_001;

  private static final float DROPOUT_PROBABILITY = 0.3f;

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void dropoutReserveSize(String binding) {
    VendorDnn dnn = open(binding).dnn();
    long small = dnn.dropoutReserveBytes(1000);
    long large = dnn.dropoutReserveBytes(4000);
    // The mask needs at least one bit per element.
    assertTrue(small >= 1000 / 8, "reserve for 1000 elements is only " + small + " bytes");
    assertTrue(large >= small, "reserve shrank from " + small + " to " + large + " bytes");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void dropoutForward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = nonZeroFloats(random, DROPOUT_ELEMENTS);
    try (Buffers buffers = new Buffers(opened.memory)) {
      boolean[] first = dropout(dnn, buffers, x, 101);
      boolean[] second = dropout(dnn, buffers, x, 101);

      assertKeptFraction(first, "first call");
      assertKeptFraction(second, "second call");
      // Two independent masks differ at each element with probability 2 p (1 - p) = 0.42, so in
      // about 4200 of 10001 places with a standard deviation of 49. Requiring 2100 is 43 standard
      // deviations below that, yet a state that did not advance differs nowhere.
      int differ = 0;
      for (int i = 0; i < x.length; i++) {
        differ += first[i] != second[i] ? 1 : 0;
      }
      assertTrue(
          differ >= 2100,
          "the second call with the same probability and seed must draw a new mask, but the two"
              + " masks differ in only "
              + differ
              + " of "
              + x.length
              + " elements");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void dropoutBackward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    int n = DROPOUT_ELEMENTS;
    float p = DROPOUT_PROBABILITY;
    long reserveBytes = dnn.dropoutReserveBytes(n);
    int reserveFloats = (int) ((reserveBytes + Float.BYTES - 1) / Float.BYTES);
    float[] x = nonZeroFloats(random, n);
    float[] dy = nonZeroFloats(random, n);
    try (Buffers buffers = new Buffers(opened.memory)) {
      long input = buffers.of(x);
      long[] reserves = {
        buffers.of(new float[reserveFloats]), buffers.of(new float[reserveFloats])
      };
      long[] outputs = {buffers.of(nans(n)), buffers.of(nans(n))};
      for (int call = 0; call < 2; call++) {
        dnn.dropoutForward(p, 202, n, input, outputs[call], reserves[call], reserveBytes);
      }

      // Backward on each reserve in turn must apply that forward call's mask, whatever the other
      // call drew, so the mask comes from the reserve and not from the current random state.
      for (int call = 0; call < 2; call++) {
        float[] y = buffers.read(outputs[call], n);
        long gradient = buffers.of(nans(n));

        dnn.dropoutBackward(p, 202, n, buffers.of(dy), gradient, reserves[call], reserveBytes);

        double[] expected = new double[n];
        for (int i = 0; i < n; i++) {
          expected[i] = y[i] == 0 ? 0 : dy[i] / (1.0 - p);
        }
        assertClose(
            binding,
            "dropout input gradient from the mask of call " + (call + 1),
            expected,
            buffers.read(gradient, n),
            ROUNDED);
      }
    }
  }

  /**
   * Runs one dropout forward call on {@code x}, checks that each output is 0 or x / (1 - p), and
   * returns which elements were kept.
   */
  private boolean[] dropout(VendorDnn dnn, Buffers buffers, float[] x, long seed) {
    int n = x.length;
    float p = DROPOUT_PROBABILITY;
    long reserveBytes = dnn.dropoutReserveBytes(n);
    long reserve = buffers.of(new float[(int) ((reserveBytes + Float.BYTES - 1) / Float.BYTES)]);
    long y = buffers.of(nans(n));

    dnn.dropoutForward(p, seed, n, buffers.of(x), y, reserve, reserveBytes);

    float[] out = buffers.read(y, n);
    boolean[] kept = new boolean[n];
    for (int i = 0; i < n; i++) {
      kept[i] = out[i] != 0;
      double scaled = x[i] / (1.0 - p);
      // ROUNDED allows for a binding that multiplies by a float32 1 / (1 - p), which rounds twice.
      double allowed = ROUNDED.relative() * Math.abs(scaled) + ROUNDED.absolute();
      assertTrue(
          !kept[i] || Math.abs(out[i] - scaled) <= allowed,
          "dropout output " + i + " is " + out[i] + ", neither 0 nor x / (1 - p) = " + scaled);
    }
    return kept;
  }

  /**
   * Checks that the kept count is near n (1 - p). It is binomial with mean 7000.7 and standard
   * deviation sqrt(n p (1 - p)) = 45.8 for n = 10001 and p = 0.3, so a correct binding falls
   * outside 5 standard deviations (229) with probability below 1e-6. A binding that drops with
   * probability 1 - p instead keeps about 3000.
   */
  private static void assertKeptFraction(boolean[] kept, String call) {
    int count = 0;
    for (boolean k : kept) {
      count += k ? 1 : 0;
    }
    double mean = kept.length * (1.0 - DROPOUT_PROBABILITY);
    double deviation = Math.sqrt(kept.length * DROPOUT_PROBABILITY * (1.0 - DROPOUT_PROBABILITY));
    assertTrue(
        Math.abs(count - mean) <= 5 * deviation,
        call
            + " kept "
            + count
            + " of "
            + kept.length
            + " elements, expected "
            + mean
            + " +- "
            + 5 * deviation);
  }

  // cuDNN activations.

  /** Elements per activation call: odd, so that a vectorized path needs a tail. */
  private static final int ACTIVATION_ELEMENTS = 1001;

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void activationForward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = activationInputs(random);
    for (ActivationMode mode : ActivationMode.values()) {
      try (Buffers buffers = new Buffers(opened.memory)) {
        long y = buffers.of(nans(x.length));

        dnn.activationForward(mode, x.length, buffers.of(x), y);

        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
          expected[i] = activation(mode, x[i]);
        }
        assertClose(binding, mode + " output", expected, buffers.read(y, x.length), ACTIVATION);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("bindings")
  void activationBackward(String binding) {
    Opened opened = open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = activationInputs(random);
    float[] dy = DeviceTestSupport.randomFloats(random, x.length);
    for (ActivationMode mode : ActivationMode.values()) {
      // y is f(x) rounded to float32, as a forward call stores it.
      float[] y = new float[x.length];
      double[] expected = new double[x.length];
      for (int i = 0; i < x.length; i++) {
        y[i] = (float) activation(mode, x[i]);
        double slope =
            switch (mode) {
              case SIGMOID -> y[i] * (1.0 - y[i]);
              case RELU -> x[i] > 0 ? 1 : 0;
              case TANH -> 1.0 - (double) y[i] * y[i];
            };
        expected[i] = slope * dy[i];
      }
      try (Buffers buffers = new Buffers(opened.memory)) {
        long dx = buffers.of(nans(x.length));

        dnn.activationBackward(mode, x.length, buffers.of(y), buffers.of(dy), buffers.of(x), dx);

        assertClose(
            binding, mode + " input gradient", expected, buffers.read(dx, x.length), ACTIVATION);
      }
    }
  }

  /** Returns inputs spread over [-4, 4), where sigmoid and tanh are neither linear nor flat. */
  private static float[] activationInputs(Random random) {
    float[] x = nonZeroFloats(random, ACTIVATION_ELEMENTS);
    for (int i = 0; i < x.length; i++) {
      x[i] *= 4;
    }
    return x;
  }

  private static double activation(ActivationMode mode, double x) {
    return switch (mode) {
      case SIGMOID -> 1 / (1 + Math.exp(-x));
      case RELU -> Math.max(0, x);
      case TANH -> Math.tanh(x);
    };
  }

  // References.

  /**
   * A column-major matrix of {@code rows} x {@code columns} with leading dimension {@code ld}: the
   * element (i, j) is {@code values[i + j * ld]}.
   */
  private record Matrix(int rows, int columns, int ld, float[] values) {

    /** Returns a random matrix whose leading dimension exceeds its rows by {@code padding}. */
    static Matrix random(Random random, int rows, int columns, int padding) {
      int ld = rows + padding;
      return new Matrix(rows, columns, ld, DeviceTestSupport.randomFloats(random, ld * columns));
    }

    /** Returns the matrix of the same layout that starts at {@code offset} of {@code values}. */
    static Matrix slice(float[] values, int offset, Matrix layout) {
      float[] part = Arrays.copyOfRange(values, offset, offset + layout.values.length);
      return new Matrix(layout.rows, layout.columns, layout.ld, part);
    }

    double get(int i, int j) {
      return values[i + j * ld];
    }

    /** Returns a copy with NaN in every element of the matrix, and the padding rows unchanged. */
    float[] withNaN() {
      float[] copy = values.clone();
      for (int e = 0; e < copy.length; e++) {
        if (e % ld < rows) {
          copy[e] = Float.NaN;
        }
      }
      return copy;
    }

    /**
     * Returns C's storage after C = alpha op(A) op(B) + beta C in float64. The padding rows keep
     * their values, and with beta = 0 the old C is not read, so a NaN there cannot reach the
     * result.
     */
    static double[] product(
        Matrix a,
        boolean transA,
        Matrix b,
        boolean transB,
        Matrix c,
        int m,
        int n,
        int k,
        double alpha,
        double beta) {
      double[] out = toDoubles(c.values);
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
          double sum = 0;
          for (int p = 0; p < k; p++) {
            double left = transA ? a.get(p, i) : a.get(i, p);
            double right = transB ? b.get(j, p) : b.get(p, j);
            sum += left * right;
          }
          out[i + j * c.ld] = alpha * sum + (beta == 0 ? 0 : beta * c.get(i, j));
        }
      }
      return out;
    }
  }

  /**
   * Random operands of one convolution, and its four results computed in float64 by one loop over
   * every (output position, weight element) pair that reads an input element inside the padding.
   */
  private record ConvolutionCase(
      float[] x, float[] w, float[] dy, double[] y, double[] dx, double[] dw, double[] db) {

    static ConvolutionCase random(Random random, Conv2dGeometry g) {
      float[] x = DeviceTestSupport.randomFloats(random, g.inputSize());
      float[] w = DeviceTestSupport.randomFloats(random, g.weightSize());
      float[] dy = DeviceTestSupport.randomFloats(random, g.outputSize());
      double[] y = new double[g.outputSize()];
      double[] dx = new double[g.inputSize()];
      double[] dw = new double[g.weightSize()];
      double[] db = new double[g.outChannels()];
      int oh = g.outHeight();
      int ow = g.outWidth();
      for (int n = 0; n < g.batch(); n++) {
        for (int k = 0; k < g.outChannels(); k++) {
          for (int i = 0; i < oh; i++) {
            for (int j = 0; j < ow; j++) {
              int o = ((n * g.outChannels() + k) * oh + i) * ow + j;
              db[k] += dy[o];
              for (int c = 0; c < g.inChannels(); c++) {
                for (int r = 0; r < g.kernelHeight(); r++) {
                  int h = i * g.strideHeight() - g.padHeight() + r * g.dilationHeight();
                  for (int s = 0; s < g.kernelWidth(); s++) {
                    int v = j * g.strideWidth() - g.padWidth() + s * g.dilationWidth();
                    if (h < 0 || h >= g.inHeight() || v < 0 || v >= g.inWidth()) {
                      continue;
                    }
                    int in = ((n * g.inChannels() + c) * g.inHeight() + h) * g.inWidth() + v;
                    int wi =
                        ((k * g.inChannels() + c) * g.kernelHeight() + r) * g.kernelWidth() + s;
                    y[o] += (double) x[in] * w[wi];
                    dx[in] += (double) w[wi] * dy[o];
                    dw[wi] += (double) x[in] * dy[o];
                  }
                }
              }
            }
          }
        }
      }
      return new ConvolutionCase(x, w, dy, y, dx, dw, db);
    }
  }

  /** One pooling's output and input gradient in float64, for one mode. */
  private record PoolingCase(double[] y, double[] dx) {

    static PoolingCase of(PoolingMode mode, Pool2dGeometry g, float[] x, float[] dy) {
      double[] y = new double[g.outputSize()];
      double[] dx = new double[g.inputSize()];
      int o = 0;
      for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
        int planeStart = plane * g.inHeight() * g.inWidth();
        for (int i = 0; i < g.outHeight(); i++) {
          for (int j = 0; j < g.outWidth(); j++) {
            // The window's input elements, with the padding left out.
            List<Integer> window = new ArrayList<>();
            for (int r = 0; r < g.kernelHeight(); r++) {
              for (int s = 0; s < g.kernelWidth(); s++) {
                int h = i * g.strideHeight() - g.padHeight() + r;
                int v = j * g.strideWidth() - g.padWidth() + s;
                if (h >= 0 && h < g.inHeight() && v >= 0 && v < g.inWidth()) {
                  window.add(planeStart + h * g.inWidth() + v);
                }
              }
            }
            if (mode == PoolingMode.MAX) {
              int best = window.get(0);
              for (int index : window) {
                best = x[index] > x[best] ? index : best;
              }
              y[o] = x[best];
              dx[best] += dy[o];
            } else {
              double count =
                  mode == PoolingMode.AVERAGE_INCLUDE_PADDING
                      ? g.kernelHeight() * g.kernelWidth()
                      : window.size();
              for (int index : window) {
                y[o] += x[index] / count;
                dx[index] += dy[o] / count;
              }
            }
            o++;
          }
        }
      }
      return new PoolingCase(y, dx);
    }
  }

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

    /** Chosen away from cuDNN's minimum of 1e-5 and large enough that leaving it out shows. */
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

  // Helpers.

  /** Returns random start values for an accumulating call, or NaN where the call overwrites. */
  private float[] startOf(boolean accumulate, int count) {
    return accumulate ? DeviceTestSupport.randomFloats(random, count) : nans(count);
  }

  /** Returns the expected output of a call that adds {@code result} when it accumulates. */
  private static double[] plus(boolean accumulate, float[] start, double[] result) {
    double[] expected = result.clone();
    if (accumulate) {
      for (int i = 0; i < expected.length; i++) {
        expected[i] += start[i];
      }
    }
    return expected;
  }

  /** Returns random floats in [-1, 1) with magnitude at least 0.05, so that none is 0. */
  private static float[] nonZeroFloats(Random random, int count) {
    float[] values = DeviceTestSupport.randomFloats(random, count);
    for (int i = 0; i < count; i++) {
      if (Math.abs(values[i]) < 0.05f) {
        values[i] = Math.copySign(0.05f, values[i]) + values[i];
      }
    }
    return values;
  }

  private static float[] nans(int count) {
    float[] values = new float[count];
    Arrays.fill(values, Float.NaN);
    return values;
  }

  private static float[] toFloats(double[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = (float) values[i];
    }
    return result;
  }

  private static double[] toDoubles(float[] values) {
    double[] result = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = values[i];
    }
    return result;
  }

  // Bindings and memory.

  /** The memory that a binding's pointers address, with the copies that the test needs. */
  private interface Memory {

    DeviceBuffer allocate(int floats);

    void copyToDevice(float[] values, DeviceBuffer buffer);

    /** Copies {@code count} floats back after all work issued before has finished. */
    float[] copyToHost(long address, int count);

    void free(DeviceBuffer buffer);

    /** Waits for all work issued before. */
    void synchronize();

    /** Returns the emulated device's memory: host memory, which the stand-ins address directly. */
    static Memory of(DeviceRuntime runtime) {
      return new Memory() {
        @Override
        public DeviceBuffer allocate(int floats) {
          return runtime.allocateFloats(floats);
        }

        @Override
        public void copyToDevice(float[] values, DeviceBuffer buffer) {
          runtime.copyToDevice(values, buffer);
        }

        @Override
        public float[] copyToHost(long address, int count) {
          float[] values = new float[count];
          runtime.copyToHost(new DeviceBuffer(address, (long) count * Float.BYTES), values);
          return values;
        }

        @Override
        public void free(DeviceBuffer buffer) {
          runtime.free(buffer);
        }

        @Override
        public void synchronize() {
          runtime.synchronize();
        }
      };
    }

    /**
     * Returns a GPU's memory through its context alone, without kiln's kernels, so that a machine
     * whose only missing piece is kiln's fatbin still tests the libraries.
     */
    static Memory of(CudaContext context) {
      return new Memory() {
        @Override
        public DeviceBuffer allocate(int floats) {
          return context.allocator().allocate((long) floats * Float.BYTES);
        }

        @Override
        public void copyToDevice(float[] values, DeviceBuffer buffer) {
          context.copies().toDevice(values, 0, buffer, 0, values.length);
        }

        @Override
        public float[] copyToHost(long address, int count) {
          float[] values = new float[count];
          context.synchronize();
          context
              .copies()
              .toHost(new DeviceBuffer(address, (long) count * Float.BYTES), 0, values, 0, count);
          return values;
        }

        @Override
        public void free(DeviceBuffer buffer) {
          context.allocator().free(buffer);
        }

        @Override
        public void synchronize() {
          context.synchronize();
        }
      };
    }
  }

  /** The buffers of one test, addressed as the bindings take them and freed together. */
  private static final class Buffers implements AutoCloseable {
    private final Memory memory;
    private final List<DeviceBuffer> owned = new ArrayList<>();

    Buffers(Memory memory) {
      this.memory = memory;
    }

    /** Returns the address of a new buffer holding {@code values}. */
    long of(float[] values) {
      DeviceBuffer buffer = memory.allocate(Math.max(1, values.length));
      owned.add(buffer);
      memory.copyToDevice(values, buffer);
      return buffer.address();
    }

    float[] read(long address, int count) {
      return memory.copyToHost(address, count);
    }

    @Override
    public void close() {
      // No call that is still running may see its buffers handed out again.
      memory.synchronize();
      for (DeviceBuffer buffer : owned) {
        memory.free(buffer);
      }
    }
  }

  /** A library that loaded, or the reason that it did not. */
  private record Loaded<T extends VendorBinding>(T library, String skipReason) {

    static <T extends VendorBinding> Loaded<T> attempt(String binding, Supplier<T> loader) {
      try {
        return new Loaded<>(loader.get(), null);
      } catch (LibraryLoadException e) {
        String reason = binding + " skipped: " + e.getMessage();
        System.out.println("VendorContractGpuTest: " + reason);
        return new Loaded<>(null, reason);
      }
    }

    /** Returns the library, or skips the calling test with the reason it did not load. */
    T orSkip() {
      assumeTrue(library != null, skipReason);
      return library;
    }
  }

  /** One binding opened for the whole class: its memory and its two libraries. */
  private record Opened(Memory memory, Loaded<VendorBlas> blasLoad, Loaded<VendorDnn> dnnLoad) {

    VendorBlas blas() {
      return blasLoad.orSkip();
    }

    VendorDnn dnn() {
      return dnnLoad.orSkip();
    }

    static Opened skipped(String reason) {
      System.out.println("VendorContractGpuTest: " + reason);
      return new Opened(null, new Loaded<>(null, reason), new Loaded<>(null, reason));
    }
  }

  /** Returns a binding, opening it on first use. A binding that cannot run skips each test. */
  private static synchronized Opened open(String binding) {
    return OPENED.computeIfAbsent(binding, VendorContractGpuTest::load);
  }

  private static Opened load(String binding) {
    if (binding.equals(STAND_IN)) {
      return new Opened(
          Memory.of(DeviceTestSupport.runtime("emulated")),
          new Loaded<>(new HostStandInVendors.Blas(), null),
          new Loaded<>(new HostStandInVendors.Dnn(), null));
    }

    // The libraries need no kiln kernels, so a device whose only missing piece is kiln's fatbin
    // counts as usable here.
    CudaAvailability cuda = CudaAvailability.check(0);
    boolean onlyFatbinMissing = cuda.message().contains(CudaAvailability.FATBIN_RESOURCE);
    if (!cuda.usable() && !onlyFatbinMissing) {
      return Opened.skipped(binding + " skipped: " + cuda.message());
    }
    CudaContext context = CudaContext.of(0);
    VendorDevice device = VendorDevice.of(context);
    Memory memory = Memory.of(context);
    if (binding.equals(JCUDA)) {
      return new Opened(
          memory,
          Loaded.attempt(binding, () -> JcublasBlas.load(device)),
          Loaded.attempt(binding, () -> JcudnnDnn.load(device)));
    }
    LibraryDiscovery discovery = LibraryDiscovery.system();
    return new Opened(
        memory,
        Loaded.attempt(
            binding, () -> CublasDirect.load(discovery.find(VendorLibrary.CUBLAS), device)),
        Loaded.attempt(
            binding, () -> CudnnDirect.load(discovery.find(VendorLibrary.CUDNN), device)));
  }

  /** Closes every library that loaded. A CUDA context stays open for the other GPU tests. */
  @AfterAll
  static synchronized void closeBindings() {
    for (Opened opened : OPENED.values()) {
      for (Loaded<?> loaded : List.of(opened.blasLoad, opened.dnnLoad)) {
        if (loaded.library != null) {
          loaded.library.close();
        }
      }
    }
    OPENED.clear();
  }
}
