package dev.kiln.nn;

import static dev.kiln.nn.golden.Parity.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import dev.kiln.nn.golden.Parity;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.ELU;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.MaxPool2d;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.layers.Tanh;
import dev.kiln.nn.loss.SmoothL1Loss;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A whole network against PyTorch: forward, SmoothL1 loss, and backward to the input and every
 * parameter, with batch norm in training mode.
 */
class SmallNetworkGoldenTest {

  /** The reference's layers: its {@code spec} reads {@value #SPEC}. */
  private static final String SPEC =
      "conv(1,4,3,pad1) bn2d(4) relu maxpool2 conv(4,6,3) elu maxpool2 flatten linear(24,10)"
          + " tanh linear(10,6); smooth_l1 mean";

  private static final String BIAS_BEFORE_BATCH_NORM = "0.bias";

  private static Sequential build(DType dtype) {
    Generator g = new Generator(1);
    int[] one = {1, 1};
    return new Sequential(
        new Conv2d(1, 4, new int[] {3, 3}, one, one, one, true, dtype, g),
        new BatchNorm2d(4, 1e-5, 0.1, true, true, dtype),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(4, 6, new int[] {3, 3}, one, new int[] {0, 0}, one, true, dtype, g),
        new ELU(),
        new MaxPool2d(2),
        new Flatten(),
        new Linear(24, 10, true, dtype, g),
        new Tanh(),
        new Linear(10, 6, true, dtype, g));
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void smallNetworkMatchesPyTorch(DType dtype) {
    GoldenCase c = GoldenCases.load("small_network.safetensors");
    assertEquals(SPEC, c.meta("spec"));
    Sequential model = build(dtype);
    for (Map.Entry<String, Tensor> p : model.namedParameters().entrySet()) {
      p.getValue().copyFrom(c.tensor(p.getKey()).to(dtype));
    }

    Tensor x = c.tensor("input").to(dtype).requiresGrad(true);
    Tensor output = model.forward(x);
    Tensor loss = new SmoothL1Loss().compute(output, c.tensor("target").to(dtype));
    loss.backward();

    assertClose("output", output, c.tensor("output"));
    assertClose("loss", loss.reshape(1), c.tensor("loss"));
    assertClose("grad_input", x.grad(), c.tensor("grad_input"));
    for (Map.Entry<String, Tensor> p : model.namedParameters().entrySet()) {
      String name = "grad_" + p.getKey();
      if (!p.getKey().equals(BIAS_BEFORE_BATCH_NORM)) {
        assertClose(name, p.getValue().grad(), c.tensor(name));
      }
    }

    // Training-mode batch norm subtracts the batch mean, which cancels any constant shift, so the
    // bias of the conv before it has a gradient of exactly zero. Both sides hold rounding noise
    // (PyTorch's is about 1e-18), so require ours to be negligible next to the weight gradient.
    double noise = maxAbs(model.namedParameters().get(BIAS_BEFORE_BATCH_NORM).grad());
    double scale = maxAbs(c.tensor("grad_0.weight"));
    assertTrue(
        noise <= Parity.tolerance(dtype) * scale,
        "grad_0.bias should be zero up to rounding, but its largest entry is " + noise);
  }

  private static double maxAbs(Tensor t) {
    double max = 0;
    for (double v : t.toDoubleArray()) {
      max = Math.max(max, Math.abs(v));
    }
    return max;
  }
}
