package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class AdamTest {
  private static final double[] START = {0.5, -1.5, 2.0, 0.0};
  private static final double[] GRAD = {0.3, -2.0, 1e-3, 5.0};

  private static Tensor param(double... values) {
    return Tensor.of(values, values.length).requiresGrad(true);
  }

  private static void feed(Tensor param, double... grad) {
    param.setGrad(Tensor.of(grad, grad.length));
  }

  @Test
  void firstStepMovesByLearningRate() {
    Tensor p = param(START);
    Adam adam = new Adam(List.of(p)).learningRate(0.01);

    feed(p, GRAD);
    adam.step();

    // m̂ = g and v̂ = g², so the step is lr * g / (|g| + eps), which is lr * sign(g) up to eps/|g|.
    for (int i = 0; i < START.length; i++) {
      double expected = START[i] - 0.01 * Math.signum(GRAD[i]);
      assertEquals(expected, p.get(i), 0.01 * 1e-8 / Math.abs(GRAD[i]) + 1e-15, "element " + i);
    }
  }

  @Test
  void firstStepInFloat32MovesByLearningRate() {
    Tensor p = Tensor.of(new float[] {1.0f, -1.0f}, 2).requiresGrad(true);
    Adam adam = new Adam(List.of(p)).learningRate(0.125);

    p.setGrad(Tensor.of(new float[] {4.0f, -0.25f}, 2));
    adam.step();

    assertEquals(0.875f, (float) p.get(0), 1e-6f);
    assertEquals(-0.875f, (float) p.get(1), 1e-6f);
    assertEquals(DType.FLOAT32, adam.stateDict().get("0.exp_avg").dtype());
  }

  @Test
  void adamWWithoutDecayEqualsAdam() {
    Tensor a = param(START);
    Tensor w = param(START);
    Adam adam = new Adam(List.of(a)).learningRate(0.01);
    AdamW adamW = new AdamW(List.of(w)).learningRate(0.01).weightDecay(0);

    for (int step = 0; step < 3; step++) {
      feed(a, GRAD);
      feed(w, GRAD);
      adam.step();
      adamW.step();
    }

    assertArrayEquals(a.toDoubleArray(), w.toDoubleArray(), 0.0);
  }

  @Test
  void adamWDecayShrinksParameterOnly() {
    Tensor a = param(START);
    Tensor w = param(START);
    Adam adam = new Adam(List.of(a)).learningRate(0.01);
    AdamW adamW = new AdamW(List.of(w)).learningRate(0.01).weightDecay(0.1);

    feed(a, GRAD);
    feed(w, GRAD);
    adam.step();
    adamW.step();

    // AdamW = p * (1 - lr * λ) - u and Adam without decay = p - u, with the same Adam step u.
    for (int i = 0; i < START.length; i++) {
      assertEquals(a.get(i) - 0.01 * 0.1 * START[i], w.get(i), 1e-15, "element " + i);
    }
  }

  @Test
  void adamL2DecayDiffersFromAdamW() {
    Tensor a = param(START);
    Tensor w = param(START);
    Adam adam = new Adam(List.of(a)).learningRate(0.01).weightDecay(0.1);
    AdamW adamW = new AdamW(List.of(w)).learningRate(0.01).weightDecay(0.1);

    feed(a, GRAD);
    feed(w, GRAD);
    adam.step();
    adamW.step();

    // L2 decay enters the moments: on the first step it moves each element by lr * sign(g + λp).
    assertEquals(START[2] - 0.01, a.get(2), 1e-9);
    assertNotEquals(a.get(2), w.get(2));
  }

  @Test
  void adamWDefaultDecayIsPyTorchs() {
    AdamW adamW = new AdamW(List.of(param(1.0)));

    assertEquals(0.01, adamW.weightDecay());
    assertEquals(1e-3, adamW.learningRate());
    assertEquals(0.0, new Adam(List.of(param(1.0))).weightDecay());
  }

  @Test
  void frozenParameterKeepsOwnStepCount() {
    Tensor early = param(1.0);
    Tensor late = param(1.0);
    Adam adam = new Adam(List.of(early, late)).learningRate(0.01);

    feed(early, 1.0);
    adam.step();
    feed(early, 1.0);
    feed(late, -3.0);
    adam.step();

    // The late parameter's first update is its own step 1, so it moves by lr * sign(g).
    assertEquals(1.01, late.get(0), 1e-9);
    assertEquals(1.0, adam.stateDict().get("1.step").item());
    assertEquals(2.0, adam.stateDict().get("0.step").item());
  }

  @Test
  void invalidSettingsRejectedWithValue() {
    Adam adam = new Adam(List.of(param(1.0)));

    var beta = assertThrows(IllegalArgumentException.class, () -> adam.betas(0.9, 1.0));
    var beta1 = assertThrows(IllegalArgumentException.class, () -> adam.betas(-0.1, 0.999));
    var eps = assertThrows(IllegalArgumentException.class, () -> adam.eps(-1e-8));
    var decay =
        assertThrows(
            IllegalArgumentException.class,
            () -> new AdamW(List.of(param(1.0))).weightDecay(-0.01));

    assertEquals("Adam: beta2 must be in [0, 1), got 1.0", beta.getMessage());
    assertEquals("Adam: beta1 must be in [0, 1), got -0.1", beta1.getMessage());
    assertEquals("Adam: eps must be >= 0, got -1.0E-8", eps.getMessage());
    assertEquals("AdamW: weightDecay must be >= 0, got -0.01", decay.getMessage());
  }
}
