package dev.kiln.core.ops;

import static dev.kiln.core.backend.device.DeviceTestSupport.CANCELLED;
import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SEED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.backend.device.DeviceTestSupport.Tolerance;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs every public op on every available device in float32, forward and backward, and compares it
 * with the same op on the CPU in float64.
 *
 * <p>Both runs start from the same float32 values, so the CPU run is the exact result of the
 * device's inputs up to float64 rounding, and the difference measures only the device's float32
 * arithmetic. The backward pass of both runs starts from the same random upstream gradient, and
 * every input that requires a gradient is compared.
 *
 * <p>The tolerances are those of {@code DeviceTestSupport}, chosen per quantity by the longest
 * chain of float32 operations behind one element:
 *
 * <ul>
 *   <li>{@code ROUNDED} for elementwise results and their gradients, which round a few times per
 *       element (exp, log, pow, tanh and sigmoid included).
 *   <li>{@code CANCELLED} for elu, whose exp(x) − 1 for small negative x keeps the rounding of
 *       exp(x) (a value near 1) in a result near 0.
 *   <li>{@link #summed(int)} for every element that is a sum: reductions, matrix products,
 *       convolutions, average pooling, batch statistics, mean losses, and the gradients of
 *       broadcasting and expand, which sum over the broadcast dimensions.
 *   <li>{@link #EXACT} for results that only move values: shape ops, max, the output of max
 *       pooling, copy, and dropout with p = 0.
 * </ul>
 */
@ExtendWith(SkipUnusableCuda.class)
class DeviceOpsTest {
  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** Tolerance of ops that copy values without arithmetic, so float32 and float64 agree exactly. */
  private static final Tolerance EXACT = new Tolerance(0, 0);

  /** Number of terms that {@code SUMMED} covers unscaled (see {@link #summed(int)}). */
  private static final int SUMMED_TERMS = 256;

  /**
   * Source of every input and upstream gradient. JUnit makes a new instance per test, so each test
   * starts at the seed.
   */
  private final Random random = new Random(SEED);

  /**
   * Returns the tolerance of a float32 sum of {@code terms} terms of magnitude up to about 1.
   * {@code SUMMED} covers a few hundred terms, counted here as 256. The rounding error of a sum
   * grows with the number of terms (about terms × 6e-8 × the magnitude), so both parts of the
   * tolerance scale by terms / 256 beyond that.
   */
  private static Tolerance summed(int terms) {
    double scale = Math.max(1.0, terms / (double) SUMMED_TERMS);
    return new Tolerance(SUMMED.relative() * scale, SUMMED.absolute() * scale);
  }

  // ---- Elementwise -----------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void binaryOpsBroadcastLikeTheCpu(String device) {
    // [2, 1, 4] with [3, 1] broadcasts to [2, 3, 4]. Each input's gradient sums over the
    // dimensions it was broadcast along: 3 terms for the first and 2 * 4 = 8 for the second.
    Tolerance gradient = summed(8);
    check(
        device, "add", in -> in[0].add(in[1]), ROUNDED, gradient, uniform(2, 1, 4), uniform(3, 1));
    check(
        device, "sub", in -> in[0].sub(in[1]), ROUNDED, gradient, uniform(2, 1, 4), uniform(3, 1));
    check(
        device, "mul", in -> in[0].mul(in[1]), ROUNDED, gradient, uniform(2, 1, 4), uniform(3, 1));
    check(
        device, "div", in -> in[0].div(in[1]), ROUNDED, gradient, uniform(2, 1, 4), positive(3, 1));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void binaryOpsOnEqualShapesMatchTheCpu(String device) {
    check(device, "add", in -> in[0].add(in[1]), ROUNDED, ROUNDED, uniform(3, 5), uniform(3, 5));
    check(device, "mul", in -> in[0].mul(in[1]), ROUNDED, ROUNDED, uniform(3, 5), uniform(3, 5));
    check(device, "div", in -> in[0].div(in[1]), ROUNDED, ROUNDED, uniform(3, 5), positive(3, 5));
    check(
        device,
        "maximum",
        in -> in[0].maximum(in[1]),
        ROUNDED,
        ROUNDED,
        uniform(3, 5),
        uniform(3, 5));
    check(
        device,
        "maximum broadcast",
        in -> in[0].maximum(in[1]),
        ROUNDED,
        summed(3),
        uniform(3, 5),
        uniform(5));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void unaryOpsMatchTheCpu(String device) {
    check(device, "neg", in -> in[0].neg(), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "exp", in -> in[0].exp(), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "log", in -> in[0].log(), ROUNDED, ROUNDED, positive(4, 6));
    check(device, "sqrt", in -> in[0].sqrt(), ROUNDED, ROUNDED, positive(4, 6));
    check(device, "pow 2.5", in -> in[0].pow(2.5), ROUNDED, ROUNDED, positive(4, 6));
    check(device, "pow 3", in -> in[0].pow(3), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "abs", in -> in[0].abs(), ROUNDED, ROUNDED, awayFromZero(4, 6));
    check(device, "clamp", in -> in[0].clamp(-0.5, 0.5), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "relu", in -> in[0].relu(), ROUNDED, ROUNDED, awayFromZero(4, 6));
    check(
        device,
        "leakyRelu",
        in -> Elementwise.leakyRelu(in[0], 0.1),
        ROUNDED,
        ROUNDED,
        awayFromZero(4, 6));
    check(device, "elu", in -> Elementwise.elu(in[0], 1.5), CANCELLED, CANCELLED, uniform(4, 6));
    check(device, "tanh", in -> in[0].tanh(), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "sigmoid", in -> in[0].sigmoid(), ROUNDED, ROUNDED, uniform(4, 6));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void scalarOpsMatchTheCpu(String device) {
    check(
        device,
        "addScalar",
        in -> Elementwise.addScalar(in[0], 0.75),
        ROUNDED,
        ROUNDED,
        uniform(4, 6));
    check(
        device,
        "mulScalar",
        in -> Elementwise.mulScalar(in[0], -1.5),
        ROUNDED,
        ROUNDED,
        uniform(4, 6));
    check(device, "div(double)", in -> in[0].div(3.0), ROUNDED, ROUNDED, uniform(4, 6));
    check(device, "sub(double)", in -> in[0].sub(0.25), ROUNDED, ROUNDED, uniform(4, 6));
  }

  // ---- Reductions ------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sumAndMeanMatchTheCpu(String device) {
    // The sum of all 60 elements is the longest sum. The gradients only copy or scale.
    Tolerance sum = summed(60);
    check(device, "sum", in -> in[0].sum(), sum, ROUNDED, uniform(3, 4, 5));
    check(device, "mean", in -> in[0].mean(), sum, ROUNDED, uniform(3, 4, 5));
    for (boolean keepDim : new boolean[] {false, true}) {
      String suffix = " over [0, 2], keepDim " + keepDim;
      check(
          device,
          "sum" + suffix,
          in -> in[0].sum(new int[] {0, 2}, keepDim),
          sum,
          ROUNDED,
          uniform(3, 4, 5));
      check(
          device,
          "mean" + suffix,
          in -> in[0].mean(new int[] {0, 2}, keepDim),
          sum,
          ROUNDED,
          uniform(3, 4, 5));
      check(
          device,
          "sum over [-1], keepDim " + keepDim,
          in -> in[0].sum(new int[] {-1}, keepDim),
          sum,
          ROUNDED,
          uniform(3, 4, 5));
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void varianceMatchesTheCpu(String device) {
    // Each variance sums 12 squared deviations, and its gradient 2(x - mean)/(n - 1) goes through
    // the mean, another sum of 12 terms.
    for (boolean unbiased : new boolean[] {false, true}) {
      for (boolean keepDim : new boolean[] {false, true}) {
        check(
            device,
            "variance over [0, 2], unbiased " + unbiased + ", keepDim " + keepDim,
            in -> in[0].variance(new int[] {0, 2}, unbiased, keepDim),
            summed(12),
            summed(12),
            uniform(3, 5, 4));
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void maxOfAllMatchesTheCpu(String device) {
    check(device, "max", in -> in[0].max(), EXACT, EXACT, uniform(3, 4, 5));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void maxAlongDimMatchesTheCpu(String device) {
    for (int dim : new int[] {0, 1, -1}) {
      for (boolean keepDim : new boolean[] {false, true}) {
        String op = "max along " + dim + ", keepDim " + keepDim;
        int[][] indices = new int[2][];
        check(
            device,
            op,
            in -> {
              Reductions.MaxResult result = in[0].max(dim, keepDim);
              indices[in[0].device().isCpu() ? 0 : 1] = result.indices();
              return result.values();
            },
            EXACT,
            EXACT,
            uniform(3, 4, 5));
        assertArrayEquals(indices[0], indices[1], op + " indices on " + device);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void reductionsOfRankZeroMatchTheCpu(String device) {
    // A rank-0 tensor has no dimension to reduce, so every reduction returns its one element, as
    // in PyTorch, and the gradient flows back unchanged.
    check(device, "sum of rank 0", in -> in[0].sum(), ROUNDED, ROUNDED, uniform());
    check(device, "mean of rank 0", in -> in[0].mean(), ROUNDED, ROUNDED, uniform());
    check(device, "max of rank 0", in -> in[0].max(), EXACT, EXACT, uniform());
    for (boolean keepDim : new boolean[] {false, true}) {
      String suffix = " of rank 0 over [], keepDim " + keepDim;
      check(
          device,
          "sum" + suffix,
          in -> in[0].sum(new int[0], keepDim),
          ROUNDED,
          ROUNDED,
          uniform());
      check(
          device,
          "mean" + suffix,
          in -> in[0].mean(new int[0], keepDim),
          ROUNDED,
          ROUNDED,
          uniform());
      // The variance of one element is 0, or 0 / 0 = NaN with Bessel's correction.
      for (boolean unbiased : new boolean[] {false, true}) {
        check(
            device,
            "variance" + suffix + ", unbiased " + unbiased,
            in -> in[0].variance(new int[0], unbiased, keepDim),
            ROUNDED,
            ROUNDED,
            uniform());
      }
    }

    // Rank-0 intermediates of a training step: a product of scalars and a dot product.
    check(
        device,
        "sum of a product of rank 0",
        in -> in[0].mul(in[1]).sum(),
        ROUNDED,
        ROUNDED,
        uniform(),
        uniform());
    check(
        device,
        "sum of a dot product",
        in -> in[0].matmul(in[1]).sum(),
        summed(3),
        summed(3),
        uniform(3),
        uniform(3));
  }

  // ---- Shape ops -------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void reshapingOpsMatchTheCpu(String device) {
    check(device, "reshape", in -> in[0].reshape(4, 6), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "reshape -1", in -> in[0].reshape(-1, 3), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "flatten", in -> in[0].flatten(), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "flatten 1..2", in -> in[0].flatten(1, 2), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "unsqueeze", in -> in[0].unsqueeze(1), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "squeeze", in -> in[0].squeeze(1), EXACT, EXACT, uniform(2, 1, 4));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void permuteAndTransposeMatchTheCpu(String device) {
    check(device, "permute", in -> in[0].permute(2, 0, 1), EXACT, EXACT, uniform(2, 3, 4));
    check(
        device, "permute 4-D", in -> in[0].permute(0, 3, 1, 2), EXACT, EXACT, uniform(2, 3, 4, 5));
    check(device, "transpose", in -> in[0].transpose(0, 2), EXACT, EXACT, uniform(2, 3, 4));
    check(device, "transpose 2-D", in -> in[0].transpose(0, 1), EXACT, EXACT, uniform(3, 5));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sliceAndCatMatchTheCpu(String device) {
    check(device, "slice dim 0", in -> in[0].slice(0, 1, 3), EXACT, EXACT, uniform(4, 3, 5));
    check(device, "slice dim 2", in -> in[0].slice(2, 1, 4), EXACT, EXACT, uniform(4, 3, 5));
    check(
        device,
        "cat dim 1",
        in -> Tensor.cat(1, in[0], in[1], in[2]),
        EXACT,
        EXACT,
        uniform(2, 1, 3),
        uniform(2, 4, 3),
        uniform(2, 2, 3));
    check(
        device,
        "cat dim 0",
        in -> Tensor.cat(0, in[0], in[1]),
        EXACT,
        EXACT,
        uniform(1, 5),
        uniform(3, 5));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void expandMatchesTheCpu(String device) {
    // The gradient of expand sums over the 2 * 4 copies of each element.
    check(device, "expand", in -> in[0].expand(2, 3, 4), EXACT, summed(8), uniform(3, 1));
  }

  // ---- Matrix products -------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void matmul2dMatchesTheCpu(String device) {
    // Output elements sum 7 products. The gradients sum over 3 (for a) and 5 (for b) terms.
    check(
        device,
        "matmul 2-D",
        in -> in[0].matmul(in[1]),
        summed(7),
        summed(7),
        uniform(5, 7),
        uniform(7, 3));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void matmulOfLongRowsScalesItsTolerance(String device) {
    // 600 products per output element, more than SUMMED covers unscaled.
    check(
        device,
        "matmul 600 terms",
        in -> in[0].matmul(in[1]),
        summed(600),
        summed(600),
        uniform(4, 600),
        uniform(600, 3));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void batchedMatmulBroadcastsBatchDims(String device) {
    // [2, 1, 4, 6] @ [3, 6, 5] gives [2, 3, 4, 5]. The gradient of a sums 5 products for each of
    // the 3 broadcast batches, 15 terms, and that of b sums over the batch of 2 and the 4 rows.
    check(
        device,
        "batched matmul",
        in -> in[0].matmul(in[1]),
        summed(6),
        summed(15),
        uniform(2, 1, 4, 6),
        uniform(3, 6, 5));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void matmulWithVectorsMatchesTheCpu(String device) {
    Tolerance sum = summed(6);
    check(device, "vector @ vector", in -> in[0].matmul(in[1]), sum, sum, uniform(6), uniform(6));
    check(
        device, "vector @ matrix", in -> in[0].matmul(in[1]), sum, sum, uniform(6), uniform(6, 4));
    check(
        device, "matrix @ vector", in -> in[0].matmul(in[1]), sum, sum, uniform(4, 6), uniform(6));
    check(
        device,
        "vector @ batch",
        in -> in[0].matmul(in[1]),
        sum,
        sum,
        uniform(6),
        uniform(2, 6, 3));
    check(
        device,
        "batch @ vector",
        in -> in[0].matmul(in[1]),
        sum,
        sum,
        uniform(2, 3, 6),
        uniform(6));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void linearWithNoInputFeatures(String device) {
    // A product over no features is the empty sum 0, so every output is the bias, and the bias
    // gradient counts the 3 rows.
    Device target = Device.parse(device);
    Tensor x = Tensor.zeros(DType.FLOAT32, 3, 0).to(target).requiresGrad(true);
    Tensor weight = Tensor.zeros(DType.FLOAT32, 2, 0).to(target).requiresGrad(true);
    Tensor bias = Tensor.of(new float[] {10, 20}, 2).to(target).requiresGrad(true);

    Tensor out = MatMul.linear(x, weight, bias);
    out.sum().backward();

    assertArrayEquals(new double[] {10, 20, 10, 20, 10, 20}, out.toDoubleArray(), 0.0);
    assertArrayEquals(new int[] {3, 0}, x.grad().shape());
    assertArrayEquals(new int[] {2, 0}, weight.grad().shape());
    assertArrayEquals(new double[] {3, 3}, bias.grad().toDoubleArray(), 0.0);
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void linearMatchesTheCpu(String device) {
    // x [2, 3, 8] and weight [5, 8]: 8 products and the bias per output. The weight and bias
    // gradients sum over the 6 rows of x, and the input gradient over the 5 outputs.
    check(
        device,
        "linear with bias",
        in -> MatMul.linear(in[0], in[1], in[2]),
        summed(9),
        summed(6),
        uniform(2, 3, 8),
        uniform(5, 8),
        uniform(5));
    check(
        device,
        "linear without bias",
        in -> MatMul.linear(in[0], in[1], null),
        summed(8),
        summed(6),
        uniform(2, 3, 8),
        uniform(5, 8));
  }

  // ---- Convolution and pooling -----------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void conv2dWithStridePaddingAndDilation(String device) {
    int[] stride = {2, 1};
    int[] padding = {1, 2};
    int[] dilation = {1, 2};
    // x [2, 3, 7, 6] and weight [4, 3, 3, 3] give an output of [2, 4, 4, 6]. An output sums
    // 3 * 3 * 3 = 27 products and the bias. The weight gradient sums over 2 * 4 * 6 = 48
    // output positions, and the input gradient over at most 4 * 3 * 3 = 36 terms.
    check(
        device,
        "conv2d",
        in -> Convolution.conv2d(in[0], in[1], in[2], stride, padding, dilation),
        summed(28),
        summed(48),
        uniform(2, 3, 7, 6),
        uniform(4, 3, 3, 3),
        uniform(4));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void conv2dWithoutBias(String device) {
    int[] ones = {1, 1};
    int[] zeros = {0, 0};
    // x [2, 2, 5, 5] and weight [3, 2, 2, 2] give [2, 3, 4, 4]: 8 products per output and
    // 2 * 4 * 4 = 32 terms per weight gradient.
    check(
        device,
        "conv2d without bias",
        in -> Convolution.conv2d(in[0], in[1], null, ones, zeros, ones),
        summed(8),
        summed(32),
        uniform(2, 2, 5, 5),
        uniform(3, 2, 2, 2));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void maxPool2dMatchesTheCpu(String device) {
    // Windows of 3 with stride 2 overlap, so an input's gradient sums up to 4 window gradients.
    check(
        device,
        "maxPool2d",
        in -> Pooling.maxPool2d(in[0], new int[] {3, 3}, new int[] {2, 2}, new int[] {1, 1}),
        EXACT,
        summed(4),
        uniform(2, 3, 7, 7));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void avgPool2dMatchesTheCpu(String device) {
    // Each output averages a window of 2 * 3 = 6 values, and windows of width 3 with stride 2
    // overlap, so an input's gradient sums up to 2 of them.
    check(
        device,
        "avgPool2d",
        in -> Pooling.avgPool2d(in[0], new int[] {2, 3}, new int[] {2, 2}, new int[] {1, 1}),
        summed(6),
        summed(2),
        uniform(2, 3, 6, 7));
  }

  // ---- Batch normalization ---------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void batchNormTrainingUpdatesRunningStats(String device) {
    // x [4, 3, 5]: the statistics of a channel sum 4 * 5 = 20 values, and so do the gradients of
    // x, weight and bias.
    Tolerance sum = summed(20);
    Tensor[][] tensors =
        check(
            device,
            "batchNorm training",
            in -> Normalization.batchNorm(in[0], in[1], in[2], in[3], in[4], true, 0.1, 1e-5),
            sum,
            sum,
            uniform(4, 3, 5),
            uniform(3).constant(),
            positive(3).constant(),
            positive(3),
            uniform(3));
    assertClose(
        device,
        "batchNorm running mean",
        tensors[0][1].toDoubleArray(),
        tensors[1][1].toFloatArray(),
        sum);
    assertClose(
        device,
        "batchNorm running variance",
        tensors[0][2].toDoubleArray(),
        tensors[1][2].toFloatArray(),
        sum);
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void batchNormTrainingWithoutAffineOrRunningStats(String device) {
    Tolerance sum = summed(20);
    check(
        device,
        "batchNorm training, no weight",
        in -> Normalization.batchNorm(in[0], null, null, null, null, true, 0.1, 1e-5),
        sum,
        sum,
        uniform(5, 2, 2, 2));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void batchNormEvalUsesRunningStats(String device) {
    // In evaluation every output is elementwise; the weight and bias gradients sum over the
    // 3 * 2 * 2 = 12 values of a channel.
    Tensor[][] tensors =
        check(
            device,
            "batchNorm eval",
            in -> Normalization.batchNorm(in[0], in[1], in[2], in[3], in[4], false, 0.1, 1e-5),
            ROUNDED,
            summed(12),
            uniform(3, 2, 2, 2),
            uniform(2).constant(),
            positive(2).constant(),
            positive(2),
            uniform(2));
    for (int i = 1; i <= 2; i++) {
      assertClose(
          device,
          "batchNorm eval leaves running statistics " + i,
          tensors[0][i].toDoubleArray(),
          tensors[1][i].toFloatArray(),
          EXACT);
    }
  }

  // ---- Dropout ---------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void dropoutWithZeroProbabilityIsIdentity(String device) {
    check(
        device,
        "dropout p=0",
        in -> Dropout.dropout(in[0], 0, true, new Generator(SEED)),
        EXACT,
        EXACT,
        uniform(3, 4));
    check(
        device,
        "dropout in evaluation",
        in -> Dropout.dropout(in[0], 0.5, false, new Generator(SEED)),
        EXACT,
        EXACT,
        uniform(3, 4));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void dropoutKeepsAndScalesWithOneMask(String device) {
    // The device's mask comes from another generator than the CPU's, so the test checks the
    // properties of inverted dropout instead of comparing elements.
    double p = 0.5;
    int n = 4096;
    Device target = Device.parse(device);
    float[] values = awayFromZero(n).values();
    Tensor x = Tensor.of(values, n).to(target).detach().requiresGrad(true);
    Tensor out = Dropout.dropout(x, p, true, new Generator(SEED));
    assertEquals(target, out.device());

    float[] upstream = randomFloats(random, n);
    out.backward(Tensor.of(upstream, n).to(target));
    float[] outputs = out.toFloatArray();
    float[] gradients = x.grad().toFloatArray();
    int kept = 0;
    for (int i = 0; i < n; i++) {
      boolean dropped = outputs[i] == 0;
      double scale = dropped ? 0 : 1 / (1 - p);
      kept += dropped ? 0 : 1;
      String element = " " + i + (dropped ? " (dropped)" : " (kept)") + " on " + device;
      // A kept element is x / (1 - p) = 2x, and its gradient uses the forward pass's mask.
      assertEquals(values[i] * scale, outputs[i], 1e-6, "dropout output" + element);
      assertEquals(upstream[i] * scale, gradients[i], 1e-6, "dropout gradient" + element);
    }
    // The kept count is binomial(4096, 0.5), with a standard deviation of 32, so a fraction
    // outside 0.5 ± 0.05 (6 standard deviations) means the kernel does not drop with p.
    double fraction = kept / (double) n;
    assertTrue(
        Math.abs(fraction - (1 - p)) < 0.05,
        "dropout on " + device + " kept " + fraction + " of the elements, expected about 0.5");
  }

  // ---- Losses ----------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void lossesMatchTheCpu(String device) {
    // A loss sums its 24 elementwise terms, and the gradients are elementwise.
    Tolerance sum = summed(24);
    for (Reduction reduction : Reduction.values()) {
      check(
          device,
          "mseLoss " + reduction,
          in -> LossOps.mseLoss(in[0], in[1], reduction),
          sum,
          ROUNDED,
          uniform(4, 6),
          uniform(4, 6));
      check(
          device,
          "l1Loss " + reduction,
          in -> LossOps.l1Loss(in[0], in[1], reduction),
          sum,
          ROUNDED,
          uniform(4, 6),
          uniform(4, 6));
      // Differences of uniform inputs span (-2, 2), so beta 0.5 and w 1 reach both branches.
      check(
          device,
          "smoothL1Loss " + reduction,
          in -> LossOps.smoothL1Loss(in[0], in[1], 0.5, reduction),
          sum,
          ROUNDED,
          uniform(4, 6),
          uniform(4, 6));
      check(
          device,
          "wingLoss " + reduction,
          in -> LossOps.wingLoss(in[0], in[1], 1.0, 0.5, reduction),
          sum,
          ROUNDED,
          uniform(4, 6),
          uniform(4, 6));
    }
  }

  // ---- Copies and conversions ------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copyMatchesTheCpu(String device) {
    check(device, "copy", in -> in[0].copy(), EXACT, EXACT, uniform(3, 4));
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void toDTypeOnTheDeviceAcceptsOnlyFloat32(String device) {
    Tensor x = Tensor.of(uniform(3).values(), 3).to(Device.parse(device));
    assertSame(x, x.to(DType.FLOAT32));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> x.to(DType.FLOAT64));
    assertTrue(e.getMessage().contains("float32"), e.getMessage());

    Tensor doubles = Tensor.of(new double[] {1, 2, 3}, 3);
    e = assertThrows(IllegalArgumentException.class, () -> doubles.to(Device.parse(device)));
    assertTrue(e.getMessage().contains("to(DType.FLOAT32)"), e.getMessage());
  }

  // ---- Inputs and the comparison ---------------------------------------------------------------

  /** Float32 values and a shape for one op input, and whether it requires a gradient. */
  private record Input(float[] values, int[] shape, boolean requiresGrad) {
    /** Returns the same input without a gradient, for running statistics. */
    Input constant() {
      return new Input(values, shape, false);
    }
  }

  /** Returns values uniform in [-1, 1). */
  private Input uniform(int... shape) {
    return new Input(randomFloats(random, Shapes.numel(shape)), shape, true);
  }

  /** Returns values in [0.5, 2), for log, sqrt, fractional powers, divisors and variances. */
  private Input positive(int... shape) {
    float[] values = new float[Shapes.numel(shape)];
    for (int i = 0; i < values.length; i++) {
      values[i] = 0.5f + 1.5f * random.nextFloat();
    }
    return new Input(values, shape, true);
  }

  /** Returns magnitudes in [0.2, 1) with random signs, away from the kinks of relu and abs. */
  private Input awayFromZero(int... shape) {
    float[] values = new float[Shapes.numel(shape)];
    for (int i = 0; i < values.length; i++) {
      float magnitude = 0.2f + 0.8f * random.nextFloat();
      values[i] = random.nextBoolean() ? magnitude : -magnitude;
    }
    return new Input(values, shape, true);
  }

  /**
   * Runs {@code function} on the CPU in float64 and on {@code device} in float32 from the same
   * inputs, then backward from one random upstream gradient, and compares the outputs and the
   * gradients of every input that requires one. Returns the input tensors, CPU first, so that a
   * test can compare what the op changed in place.
   */
  private Tensor[][] check(
      String device,
      String op,
      Function<Tensor[], Tensor> function,
      Tolerance forward,
      Tolerance backward,
      Input... inputs) {
    Device target = Device.parse(device);
    Tensor[] reference = new Tensor[inputs.length];
    Tensor[] onDevice = new Tensor[inputs.length];
    boolean anyGradient = false;
    for (int i = 0; i < inputs.length; i++) {
      Input input = inputs[i];
      double[] doubles = new double[input.values().length];
      for (int j = 0; j < doubles.length; j++) {
        doubles[j] = input.values()[j];
      }
      reference[i] = Tensor.of(doubles, input.shape()).requiresGrad(input.requiresGrad());
      onDevice[i] =
          Tensor.of(input.values(), input.shape())
              .to(target)
              .detach()
              .requiresGrad(input.requiresGrad());
      anyGradient |= input.requiresGrad();
    }

    Tensor expected = function.apply(reference);
    Tensor actual = function.apply(onDevice);
    assertEquals(target, actual.device(), op + " output device");
    assertEquals(DType.FLOAT32, actual.dtype(), op + " output dtype");
    assertArrayEquals(expected.shape(), actual.shape(), op + " output shape on " + device);
    assertClose(device, op + " output", expected.toDoubleArray(), actual.toFloatArray(), forward);
    if (!anyGradient) {
      return new Tensor[][] {reference, onDevice};
    }

    int[] shape = expected.shape();
    float[] upstream = randomFloats(random, expected.numel());
    double[] upstreamDoubles = new double[upstream.length];
    for (int j = 0; j < upstream.length; j++) {
      upstreamDoubles[j] = upstream[j];
    }
    expected.backward(Tensor.of(upstreamDoubles, shape));
    actual.backward(Tensor.of(upstream, shape).to(target));
    for (int i = 0; i < inputs.length; i++) {
      if (!inputs[i].requiresGrad()) {
        continue;
      }
      String quantity = op + " gradient of input " + i;
      assertNotNull(onDevice[i].grad(), quantity + " on " + device + " is missing");
      assertEquals(target, onDevice[i].grad().device(), quantity + " device");
      assertClose(
          device,
          quantity,
          reference[i].grad().toDoubleArray(),
          onDevice[i].grad().toFloatArray(),
          backward);
    }
    return new Tensor[][] {reference, onDevice};
  }
}
