package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class SGDTest {
  private static final double EXACT = 1e-15;

  private static Tensor param(double... values) {
    return Tensor.of(values, values.length).requiresGrad(true);
  }

  private static void feed(Tensor param, double... grad) {
    param.setGrad(Tensor.of(grad, grad.length));
  }

  @Test
  void plainStepSubtractsScaledGradient() {
    Tensor p = param(1.0, 2.0);
    SGD sgd = new SGD(List.of(p), 0.1);

    feed(p, 0.5, -1.0);
    sgd.step();

    assertArrayEquals(new double[] {0.95, 2.1}, p.toDoubleArray(), EXACT);
  }

  @Test
  void momentumBufferStartsAtGradient() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).momentum(0.9);

    feed(p, 2.0);
    sgd.step();
    // b = g = 2, p = 1 - 0.1 * 2
    assertEquals(0.8, p.get(0), EXACT);

    feed(p, 1.0);
    sgd.step();
    // b = 0.9 * 2 + 1 = 2.8, p = 0.8 - 0.28
    assertEquals(0.52, p.get(0), EXACT);
  }

  @Test
  void dampeningScalesLaterGradients() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).momentum(0.9).dampening(0.5);

    feed(p, 2.0);
    sgd.step();
    // The first step sets b = g, without dampening.
    assertEquals(0.8, p.get(0), EXACT);

    feed(p, 1.0);
    sgd.step();
    // b = 0.9 * 2 + 0.5 * 1 = 2.3, p = 0.8 - 0.23
    assertEquals(0.57, p.get(0), EXACT);
  }

  @Test
  void nesterovLooksAhead() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).momentum(0.9).nesterov(true);

    feed(p, 2.0);
    sgd.step();
    // b = 2, d = g + 0.9 * b = 3.8, p = 1 - 0.38
    assertEquals(0.62, p.get(0), EXACT);

    feed(p, 1.0);
    sgd.step();
    // b = 0.9 * 2 + 1 = 2.8, d = 1 + 0.9 * 2.8 = 3.52, p = 0.62 - 0.352
    assertEquals(0.268, p.get(0), EXACT);
  }

  @Test
  void weightDecayAddsL2Term() {
    Tensor p = param(2.0);
    SGD sgd = new SGD(List.of(p), 0.1).weightDecay(0.5);

    feed(p, 1.0);
    sgd.step();

    // g = 1 + 0.5 * 2 = 2, p = 2 - 0.2
    assertEquals(1.8, p.get(0), EXACT);
  }

  @Test
  void nesterovWithoutMomentumRejected() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).nesterov(true);
    feed(p, 1.0);

    var error = assertThrows(IllegalStateException.class, sgd::step);

    assertTrue(error.getMessage().contains("momentum is 0.0"), error.getMessage());
    assertEquals(1.0, p.get(0));
  }

  @Test
  void nesterovWithDampeningRejected() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).momentum(0.9).dampening(0.1).nesterov(true);
    feed(p, 1.0);

    var error = assertThrows(IllegalStateException.class, sgd::step);

    assertTrue(error.getMessage().contains("dampening is 0.1"), error.getMessage());
  }

  @Test
  void negativeSettingsRejectedWithValue() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1);

    var lr = assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(p), -0.5));
    var momentum = assertThrows(IllegalArgumentException.class, () -> sgd.momentum(-1));
    var decay = assertThrows(IllegalArgumentException.class, () -> sgd.weightDecay(Double.NaN));

    assertEquals("SGD: learningRate must be >= 0, got -0.5", lr.getMessage());
    assertEquals("SGD: momentum must be >= 0, got -1.0", momentum.getMessage());
    assertEquals("SGD: weightDecay must be >= 0, got NaN", decay.getMessage());
  }

  @Test
  void zeroMomentumKeepsNoBuffer() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1);

    feed(p, 1.0);
    sgd.step();

    assertEquals(List.of("step", "lr"), List.copyOf(sgd.stateDict().keySet()));
  }
}
