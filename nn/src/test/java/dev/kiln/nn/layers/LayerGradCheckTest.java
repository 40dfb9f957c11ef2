package dev.kiln.nn.layers;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.ops.Dropout;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.init.Init;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Float64 central-difference checks of every layer's gradients, for the input and for each
 * parameter (see {@link GradCheck} for the error measure and tolerance).
 */
class LayerGradCheckTest {
  private static final DType F64 = DType.FLOAT64;

  @Test
  void conv2dPlain() {
    check(conv(3, 2, 3, 1, 0, 1, true), input(2, 3, 7, 5));
  }

  @Test
  void conv2dStrideAndPadding() {
    check(conv(2, 3, 5, 2, 2, 1, true), input(1, 2, 9, 8));
  }

  @Test
  void conv2dDilationWithoutBias() {
    check(conv(2, 2, 3, 1, 1, 2, false), input(2, 2, 7, 6));
  }

  @Test
  void conv2dOneByOneBatchOne() {
    check(conv(4, 3, 1, 1, 0, 1, true), input(1, 4, 3, 5));
  }

  @Test
  void linearWithBias() {
    check(new Linear(7, 5, true, F64, new Generator(3)), input(3, 7));
  }

  @Test
  void linearWithoutBiasBatchOne() {
    check(new Linear(4, 6, false, F64, new Generator(3)), input(1, 4));
  }

  @Test
  void linearOnThreeDimensionalInput() {
    check(new Linear(3, 2, true, F64, new Generator(3)), input(2, 4, 3));
  }

  @Test
  void maxPoolOddInput() {
    check(new MaxPool2d(2), input(2, 3, 7, 5));
  }

  @Test
  void maxPoolOverlappingWithPadding() {
    check(new MaxPool2d(3, 2, 1), input(1, 2, 8, 7));
  }

  @Test
  void avgPoolOddInput() {
    check(new AvgPool2d(2), input(2, 2, 5, 7));
  }

  @Test
  void avgPoolOverlappingWithPadding() {
    check(new AvgPool2d(3, 2, 1), input(1, 2, 6, 7));
  }

  @Test
  void batchNorm2dTraining() {
    check(batchNorm2d().train(), input(3, 2, 3, 5));
  }

  @Test
  void batchNorm2dEval() {
    BatchNorm2d layer = batchNorm2d();
    Init.uniform(layer.runningMean(), -0.5, 0.5, new Generator(8));
    Init.uniform(layer.runningVar(), 0.5, 2.0, new Generator(9));
    check(layer.eval(), input(2, 2, 3, 3));
  }

  @Test
  void batchNorm1dTraining() {
    check(batchNorm1d().train(), input(5, 3));
  }

  @Test
  void batchNorm1dTrainingOnSequences() {
    check(batchNorm1d().train(), input(2, 3, 4));
  }

  @Test
  void batchNorm1dEval() {
    BatchNorm1d layer = batchNorm1d();
    Init.uniform(layer.runningMean(), -0.5, 0.5, new Generator(8));
    Init.uniform(layer.runningVar(), 0.5, 2.0, new Generator(9));
    check(layer.eval(), input(1, 3));
  }

  @Test
  void activations() {
    for (Module layer :
        List.of(new ReLU(), new LeakyReLU(0.1), new ELU(0.7), new Tanh(), new Sigmoid())) {
      check(layer, awayFromZero(input(2, 3, 5)));
    }
  }

  @Test
  void flattenKeepsBatch() {
    check(new Flatten(), input(2, 3, 2, 2));
  }

  @Test
  void dropoutWithFixedMask() {
    Tensor x = input(3, 7).requiresGrad(true);
    // A fresh generator per call gives the same mask for every finite-difference evaluation.
    GradCheck.assertGradients(in -> Dropout.dropout(in.get(0), 0.3, true, new Generator(5)), x);
  }

  @Test
  void dropoutEvalIsIdentity() {
    check(new dev.kiln.nn.layers.Dropout(0.5).eval(), input(2, 4));
  }

  @Test
  void sequentialOfConvBatchNormPoolLinear() {
    Generator g = new Generator(11);
    Module model =
        new dev.kiln.nn.Sequential(
            new Conv2d(
                1,
                3,
                new int[] {3, 3},
                new int[] {1, 1},
                new int[] {1, 1},
                new int[] {1, 1},
                true,
                F64,
                g),
            new BatchNorm2d(3, 1e-5, 0.1, true, true, F64),
            new ELU(),
            new MaxPool2d(2),
            new Flatten(),
            new Linear(3 * 3 * 2, 4, true, F64, g),
            new Tanh());
    check(model.train(), input(2, 1, 6, 5));
  }

  // ---- Helpers ---------------------------------------------------------------------------------

  /** Checks the gradients of the input and of every parameter of {@code layer}. */
  private static void check(Module layer, Tensor x) {
    List<Tensor> inputs = new ArrayList<>();
    inputs.add(x.requiresGrad(true));
    inputs.addAll(layer.parameters());
    for (Tensor parameter : layer.parameters()) {
      // Move batch norm's weight away from its initial 1 so a wrong scale would show.
      Init.uniform(parameter, 0.5, 1.5, new Generator(parameter.numel()));
    }
    GradCheck.assertGradients(in -> layer.forward(in.get(0)), inputs.toArray(new Tensor[0]));
  }

  private static Conv2d conv(
      int in, int out, int kernel, int stride, int padding, int dilation, boolean bias) {
    return new Conv2d(
        in,
        out,
        new int[] {kernel, kernel},
        new int[] {stride, stride},
        new int[] {padding, padding},
        new int[] {dilation, dilation},
        bias,
        F64,
        new Generator(2));
  }

  private static BatchNorm2d batchNorm2d() {
    return new BatchNorm2d(2, 1e-5, 0.1, true, true, F64);
  }

  private static BatchNorm1d batchNorm1d() {
    return new BatchNorm1d(3, 1e-5, 0.1, true, true, F64);
  }

  /**
   * Returns values uniform in [-1, 1), distinct with probability 1, so no max-pool window has a tie
   * that finite differences would straddle.
   */
  private static Tensor input(int... shape) {
    return Init.uniform(Tensor.zeros(F64, shape), -1, 1, new Generator(shape.length * 31L));
  }

  /** Pushes values at least 0.05 away from 0, the kink of ReLU and its relatives. */
  private static Tensor awayFromZero(Tensor x) {
    for (int i = 0; i < x.numel(); i++) {
      double v = x.storage().get(i);
      x.storage().set(i, v + Math.copySign(0.05, v));
    }
    return x;
  }
}
