package dev.kiln.nn.layers;

import static dev.kiln.nn.golden.Parity.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import dev.kiln.nn.golden.GoldenRun;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs each layer on the inputs of a PyTorch reference case and compares the output, the input
 * gradient and the parameter gradients, in float64 and float32 on the CPU and in float32 on every
 * available device (see {@link GoldenRun}).
 */
class LayerGoldenTest {
  private static final String RUNS = "dev.kiln.nn.golden.GoldenRun#all";

  @ParameterizedTest
  @MethodSource(RUNS)
  void linearWithBiasMatchesPyTorch(GoldenRun run) {
    checkLinear("linear_3x7_to_5.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void linearWithoutBiasMatchesPyTorch(GoldenRun run) {
    checkLinear("linear_nobias_2x4_to_6.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void conv3x3MatchesPyTorch(GoldenRun run) {
    checkConv("conv_k3_s1_p0.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void conv5x5Stride2Pad2MatchesPyTorch(GoldenRun run) {
    checkConv("conv_k5_s2_p2.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void conv1x1NoBiasMatchesPyTorch(GoldenRun run) {
    checkConv("conv_k1_nobias.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void maxPoolOddInputMatchesPyTorch(GoldenRun run) {
    GoldenCase c = GoldenCases.load("maxpool_k2_s2_odd.safetensors");
    checkParameterFree(
        c,
        run,
        new MaxPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void maxPoolPaddedMatchesPyTorch(GoldenRun run) {
    GoldenCase c = GoldenCases.load("maxpool_k3_s2_p1.safetensors");
    checkParameterFree(
        c,
        run,
        new MaxPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void avgPoolMatchesPyTorch(GoldenRun run) {
    GoldenCase c = GoldenCases.load("avgpool_k2_s2.safetensors");
    checkParameterFree(
        c,
        run,
        new AvgPool2d(
            poolSettings(c, "kernel_size"), poolSettings(c, "stride"), poolSettings(c, "padding")));
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void batchNorm1dTrainingMatchesPyTorch(GoldenRun run) {
    checkBatchNorm("batchnorm1d_train.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void batchNorm2dTrainingMatchesPyTorch(GoldenRun run) {
    checkBatchNorm("batchnorm2d_train.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void batchNorm2dEvalMatchesPyTorch(GoldenRun run) {
    checkBatchNorm("batchnorm2d_eval.safetensors", run);
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void reluMatchesPyTorch(GoldenRun run) {
    checkParameterFree(GoldenCases.load("relu.safetensors"), run, new ReLU());
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void leakyReluMatchesPyTorch(GoldenRun run) {
    GoldenCase c = GoldenCases.load("leaky_relu.safetensors");
    checkParameterFree(c, run, new LeakyReLU(c.metaDouble("slope")));
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void eluMatchesPyTorch(GoldenRun run) {
    GoldenCase c = GoldenCases.load("elu.safetensors");
    checkParameterFree(c, run, new ELU(c.metaDouble("alpha")));
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void tanhMatchesPyTorch(GoldenRun run) {
    checkParameterFree(GoldenCases.load("tanh.safetensors"), run, new Tanh());
  }

  @ParameterizedTest
  @MethodSource(RUNS)
  void sigmoidMatchesPyTorch(GoldenRun run) {
    checkParameterFree(GoldenCases.load("sigmoid.safetensors"), run, new Sigmoid());
  }

  // ---- Shared checks ---------------------------------------------------------------------------

  private static void checkLinear(String file, GoldenRun run) {
    GoldenCase c = GoldenCases.load(file);
    Linear layer =
        new Linear(
            c.metaInt("in_features"),
            c.metaInt("out_features"),
            c.metaBool("bias"),
            run.dtype(),
            new Generator(1));
    checkWithParameters(c, run, layer);
  }

  private static void checkConv(String file, GoldenRun run) {
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
            run.dtype(),
            new Generator(1));
    checkWithParameters(c, run, layer);
  }

  private static void checkBatchNorm(String file, GoldenRun run) {
    GoldenCase c = GoldenCases.load(file);
    int features = c.metaInt("num_features");
    double eps = c.metaDouble("eps");
    double momentum = c.metaDouble("momentum");
    DType dtype = run.dtype();
    BatchNorm layer =
        c.meta("layer").equals("BatchNorm1d")
            ? new BatchNorm1d(features, eps, momentum, true, true, dtype)
            : new BatchNorm2d(features, eps, momentum, true, true, dtype);
    layer.runningMean().copyFrom(c.tensor("running_mean_before").to(dtype));
    layer.runningVar().copyFrom(c.tensor("running_var_before").to(dtype));

    checkWithParameters(c, run, layer);

    assertEquals(run.device(), layer.runningMean().device(), "running_mean device");
    assertClose("running_mean", layer.runningMean(), c.tensor("running_mean_after"));
    assertClose("running_var", layer.runningVar(), c.tensor("running_var_after"));
  }

  /**
   * Loads the case's parameters into the layer, moves it to the run's device, runs it, and compares
   * output and gradients.
   */
  private static void checkWithParameters(GoldenCase c, GoldenRun run, Module layer) {
    // Activation cases have no "training" key: their result does not depend on the mode.
    layer.train(!c.metadata().containsKey("training") || c.metaBool("training"));
    for (var entry : layer.namedParameters().entrySet()) {
      entry.getValue().copyFrom(c.tensor(entry.getKey()).to(run.dtype()));
    }
    layer.to(run.device());

    Tensor x = input(c, "input", run).requiresGrad(true);
    Tensor out = layer.forward(x);
    out.backward(input(c, "grad_output", run));

    assertEquals(run.device(), out.device(), "output device");
    assertClose("output", out, c.tensor("output"));
    assertClose("grad_input", x.grad(), c.tensor("grad_input"));
    for (var entry : layer.namedParameters().entrySet()) {
      String name = "grad_" + entry.getKey();
      assertEquals(run.device(), entry.getValue().grad().device(), name + " device");
      assertClose(name, entry.getValue().grad(), c.tensor(name));
    }
  }

  private static void checkParameterFree(GoldenCase c, GoldenRun run, Module layer) {
    checkWithParameters(c, run, layer);
  }

  private static int[] poolSettings(GoldenCase c, String key) {
    int value = c.metaInt(key);
    return new int[] {value, value};
  }

  /** Returns a case's tensor in the run's dtype, as a leaf on the run's device. */
  private static Tensor input(GoldenCase c, String name, GoldenRun run) {
    return c.tensor(name).to(run.dtype()).to(run.device()).detach();
  }
}
