package dev.kiln.nn.layers;

import static dev.kiln.nn.golden.Parity.assertClose;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Runs each layer on the inputs of a PyTorch reference case and compares the output, the input
 * gradient and the parameter gradients, in float64 and float32.
 */
class LayerGoldenTest {

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearWithBiasMatchesPyTorch(DType dtype) {
    checkLinear("linear_3x7_to_5.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearWithoutBiasMatchesPyTorch(DType dtype) {
    checkLinear("linear_nobias_2x4_to_6.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void conv3x3MatchesPyTorch(DType dtype) {
    checkConv("conv_k3_s1_p0.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void conv5x5Stride2Pad2MatchesPyTorch(DType dtype) {
    checkConv("conv_k5_s2_p2.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void conv1x1NoBiasMatchesPyTorch(DType dtype) {
    checkConv("conv_k1_nobias.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxPoolOddInputMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("maxpool_k2_s2_odd.safetensors");
    checkParameterFree(
        c,
        dtype,
        new MaxPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void maxPoolPaddedMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("maxpool_k3_s2_p1.safetensors");
    checkParameterFree(
        c,
        dtype,
        new MaxPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void avgPoolMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("avgpool_k2_s2.safetensors");
    checkParameterFree(
        c,
        dtype,
        new AvgPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void batchNorm1dTrainingMatchesPyTorch(DType dtype) {
    checkBatchNorm("batchnorm1d_train.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void batchNorm2dTrainingMatchesPyTorch(DType dtype) {
    checkBatchNorm("batchnorm2d_train.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void batchNorm2dEvalMatchesPyTorch(DType dtype) {
    checkBatchNorm("batchnorm2d_eval.safetensors", dtype);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void reluMatchesPyTorch(DType dtype) {
    checkParameterFree(GoldenCases.load("relu.safetensors"), dtype, new ReLU());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void leakyReluMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("leaky_relu.safetensors");
    checkParameterFree(c, dtype, new LeakyReLU(c.metaDouble("slope")));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void eluMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("elu.safetensors");
    checkParameterFree(c, dtype, new ELU(c.metaDouble("alpha")));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void tanhMatchesPyTorch(DType dtype) {
    checkParameterFree(GoldenCases.load("tanh.safetensors"), dtype, new Tanh());
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void sigmoidMatchesPyTorch(DType dtype) {
    checkParameterFree(GoldenCases.load("sigmoid.safetensors"), dtype, new Sigmoid());
  }

  // ---- Shared checks ---------------------------------------------------------------------------

  private static void checkLinear(String file, DType dtype) {
    GoldenCase c = GoldenCases.load(file);
    Linear layer =
        new Linear(
            c.metaInt("in_features"),
            c.metaInt("out_features"),
            c.metaBool("bias"),
            dtype,
            new Generator(1));
    checkWithParameters(c, dtype, layer);
  }

  private static void checkConv(String file, DType dtype) {
    GoldenCase c = GoldenCases.load(file);
    int k = c.metaInt("kernel_size");
    int s = c.metaInt("stride");
    int p = c.metaInt("padding");
    int d = c.metaInt("dilation");
    Conv2d layer =
        new Conv2d(
            c.metaInt("in_channels"),
            c.metaInt("out_channels"),
            new int[] {k, k},
            new int[] {s, s},
            new int[] {p, p},
            new int[] {d, d},
            c.metaBool("bias"),
            dtype,
            new Generator(1));
    checkWithParameters(c, dtype, layer);
  }

  private static void checkBatchNorm(String file, DType dtype) {
    GoldenCase c = GoldenCases.load(file);
    int features = c.metaInt("num_features");
    double eps = c.metaDouble("eps");
    double momentum = c.metaDouble("momentum");
    BatchNorm layer =
        c.meta("layer").equals("BatchNorm1d")
            ? new BatchNorm1d(features, eps, momentum, true, true, dtype)
            : new BatchNorm2d(features, eps, momentum, true, true, dtype);
    layer.runningMean().copyFrom(input(c, "running_mean_before", dtype));
    layer.runningVar().copyFrom(input(c, "running_var_before", dtype));

    checkWithParameters(c, dtype, layer);

    assertClose("running_mean", layer.runningMean(), c.tensor("running_mean_after"));
    assertClose("running_var", layer.runningVar(), c.tensor("running_var_after"));
  }

  /** Loads the case's parameters into the layer, runs it, and compares output and gradients. */
  private static void checkWithParameters(GoldenCase c, DType dtype, Module layer) {
    // Activation cases have no "training" key: their result does not depend on the mode.
    layer.train(!c.metadata().containsKey("training") || c.metaBool("training"));
    for (var entry : layer.namedParameters().entrySet()) {
      entry.getValue().copyFrom(input(c, entry.getKey(), dtype));
    }

    Tensor x = input(c, "input", dtype).requiresGrad(true);
    Tensor out = layer.forward(x);
    out.backward(input(c, "grad_output", dtype));

    assertClose("output", out, c.tensor("output"));
    assertClose("grad_input", x.grad(), c.tensor("grad_input"));
    for (var entry : layer.namedParameters().entrySet()) {
      String name = "grad_" + entry.getKey();
      assertClose(name, entry.getValue().grad(), c.tensor(name));
    }
  }

  private static void checkParameterFree(GoldenCase c, DType dtype, Module layer) {
    checkWithParameters(c, dtype, layer);
  }

  private static int[] poolSettings(GoldenCase c, String key) {
    int value = c.metaInt(key);
    return new int[] {value, value};
  }

  private static Tensor input(GoldenCase c, String name, DType dtype) {
    return c.tensor(name).to(dtype);
  }
}
