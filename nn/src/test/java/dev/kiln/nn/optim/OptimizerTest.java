package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.layers.Linear;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** Behavior shared by all optimizers: the gradient checks, zeroGrad and the state dict. */
class OptimizerTest {

  private static Tensor param(double... values) {
    return Tensor.of(values, values.length).requiresGrad(true);
  }

  @Test
  void stepWithoutGradientsFails() {
    List<Tensor> params = List.of(param(1, 2), param(3), param(4));
    Adam adam = new Adam(params);

    var error = assertThrows(IllegalStateException.class, adam::step);

    assertTrue(
        error.getMessage().startsWith("none of the Adam optimizer's 3 parameters received a"),
        error.getMessage());
    assertTrue(
        error.getMessage().contains("built for another instance of the model"), error.getMessage());
    assertEquals(1.0, params.get(0).get(0));
  }

  @Test
  void stepAfterBackwardThroughOtherModelFails() {
    Linear trained = new Linear(3, 2);
    Linear copy = new Linear(3, 2);
    copy.loadStateDict(trained.stateDict(), true);
    SGD sgd = new SGD(trained.parameters(), 0.1);

    Tensor input = Tensor.ones(DType.FLOAT32, 4, 3);
    copy.forward(input).sum().backward();
    var error = assertThrows(IllegalStateException.class, sgd::step);

    assertTrue(
        error.getMessage().contains("none of the SGD optimizer's 2 parameters"),
        error.getMessage());
    assertNotNull(copy.weight().grad());
  }

  @Test
  void stepAfterBackwardThroughOwnModelWorks() {
    Linear model = new Linear(3, 2);
    SGD sgd = new SGD(model.parameters(), 0.1);
    float[] before = model.weight().toFloatArray();

    model.forward(Tensor.ones(DType.FLOAT32, 4, 3)).sum().backward();
    sgd.step();

    // d(sum(x Wᵀ + b))/dW is 4 for every weight with an all-ones batch of 4.
    assertEquals(before[0] - 0.4f, model.weight().toFloatArray()[0], 1e-6f);
    assertEquals(1, sgd.steps());
  }

  @Test
  void parameterWithoutGradientIsSkipped() {
    Tensor trained = param(1.0);
    Tensor frozen = param(5.0);
    SGD sgd = new SGD(List.of(trained, frozen), 0.5);

    trained.setGrad(Tensor.of(new double[] {1.0}, 1));
    sgd.step();

    assertEquals(0.5, trained.get(0));
    assertEquals(5.0, frozen.get(0));
  }

  @Test
  void zeroGradClearsEveryGradient() {
    Tensor a = param(1.0);
    Tensor b = param(2.0);
    SGD sgd = new SGD(List.of(a, b), 0.1);
    a.setGrad(Tensor.of(new double[] {1.0}, 1));
    b.setGrad(Tensor.of(new double[] {1.0}, 1));

    sgd.zeroGrad();

    assertNull(a.grad());
    assertNull(b.grad());
    assertThrows(IllegalStateException.class, sgd::step);
  }

  @Test
  void invalidParameterListsRejected() {
    Tensor p = param(1.0);
    Tensor constant = Tensor.of(new double[] {1.0}, 1);
    Tensor derived = p.mul(2.0);

    var empty = assertThrows(IllegalArgumentException.class, () -> new Adam(List.of()));
    var twice = assertThrows(IllegalArgumentException.class, () -> new Adam(List.of(p, p)));
    var noGrad = assertThrows(IllegalArgumentException.class, () -> new Adam(List.of(p, constant)));
    var notLeaf =
        assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(derived), 0.1));

    assertTrue(empty.getMessage().contains("empty parameter list"), empty.getMessage());
    assertTrue(
        twice.getMessage().contains("parameter 1 is the same tensor as parameter 0"),
        twice.getMessage());
    assertTrue(
        noGrad.getMessage().contains("parameter 1 (shape [1]) does not require a gradient"),
        noGrad.getMessage());
    assertTrue(notLeaf.getMessage().contains("is not a leaf tensor"), notLeaf.getMessage());
  }

  @Test
  void mismatchedGradientRejected() {
    Tensor p = param(1.0, 2.0);
    SGD sgd = new SGD(List.of(p), 0.1);
    p.setGrad(Tensor.of(new float[] {1.0f, 2.0f}, 2));

    var error = assertThrows(IllegalStateException.class, sgd::step);

    assertTrue(error.getMessage().contains("its gradient is float32 [2]"), error.getMessage());
  }

  @Test
  void mixedDtypesUpdateTogether() {
    Tensor single = Tensor.of(new float[] {1.0f}, 1).requiresGrad(true);
    Tensor dbl = param(1.0);
    SGD sgd = new SGD(List.of(single, dbl), 0.25).momentum(0.5);

    single.setGrad(Tensor.of(new float[] {1.0f}, 1));
    dbl.setGrad(Tensor.of(new double[] {1.0}, 1));
    sgd.step();

    assertEquals(0.75, single.get(0));
    assertEquals(0.75, dbl.get(0));
  }

  // ---- Dtype changes after the first step --------------------------------------------------

  @Test
  void adamStateFollowsModelToFloat64() {
    Linear layer = new Linear(3, 2);
    Adam adam = new Adam(layer.parameters()).learningRate(0.01);
    layer.forward(Tensor.ones(DType.FLOAT32, 4, 3)).sum().backward();
    adam.step();
    double[] firstMoment = adam.stateDict().get("0.exp_avg").toDoubleArray();
    adam.zeroGrad();

    layer.to(DType.FLOAT64);
    layer.forward(Tensor.ones(DType.FLOAT64, 4, 3)).sum().backward();
    double[] grad = layer.weight().grad().toDoubleArray();
    adam.step();

    Tensor moment = adam.stateDict().get("0.exp_avg");
    assertEquals(DType.FLOAT64, moment.dtype());
    assertEquals(DType.FLOAT64, adam.stateDict().get("1.exp_avg_sq").dtype());
    assertEquals(2, adam.steps());
    for (int i = 0; i < grad.length; i++) {
      // The float32 moment widens exactly, then steps in float64 as the kernel computes it.
      double expected = 0.9 * firstMoment[i] + (1.0 - 0.9) * grad[i];
      assertEquals(expected, moment.toDoubleArray()[i], 0.0, "exp_avg[" + i + "]");
    }
  }

  @Test
  void sgdStateFollowsModelToFloat32() {
    Linear layer = new Linear(3, 2, true, DType.FLOAT64, new Generator(5));
    SGD sgd = new SGD(layer.parameters(), 0.1).momentum(0.9);
    layer.forward(Tensor.ones(DType.FLOAT64, 4, 3)).sum().backward();
    sgd.step();
    double[] firstBuffer = sgd.stateDict().get("0.momentum_buffer").toDoubleArray();
    sgd.zeroGrad();

    layer.to(DType.FLOAT32);
    layer.forward(Tensor.ones(DType.FLOAT32, 4, 3)).sum().backward();
    double[] grad = layer.weight().grad().toDoubleArray();
    sgd.step();

    Tensor buffer = sgd.stateDict().get("0.momentum_buffer");
    assertEquals(DType.FLOAT32, buffer.dtype());
    for (int i = 0; i < grad.length; i++) {
      float expected = (float) (0.9 * (float) firstBuffer[i] + grad[i]);
      assertEquals(expected, buffer.toFloatArray()[i], "momentum_buffer[" + i + "]");
    }
  }

  // ---- State dict --------------------------------------------------------------------------

  /** Returns the gradient fed at step k, varied so that a lost or repeated step would show. */
  private static Tensor gradAt(int k, DType dtype) {
    double[] values = {Math.sin(k + 1.0), Math.cos(3.0 * k), 0.1 * k - 0.25};
    return Tensor.of(values, 3).to(dtype).copy();
  }

  private static Tensor startParam(DType dtype) {
    return Tensor.of(new double[] {0.3, -0.7, 1.1}, 3).to(dtype).copy().requiresGrad(true);
  }

  private static void train(Optimizer optimizer, Tensor p, int from, int to, DType dtype) {
    for (int k = from; k < to; k++) {
      p.setGrad(gradAt(k, dtype));
      optimizer.step();
    }
  }

  private static void assertResumeIsExact(Function<List<Tensor>, Optimizer> factory, DType dtype) {
    Tensor straight = startParam(dtype);
    train(factory.apply(List.of(straight)), straight, 0, 6, dtype);

    Tensor resumed = startParam(dtype);
    Optimizer first = factory.apply(List.of(resumed));
    train(first, resumed, 0, 3, dtype);
    Map<String, Tensor> saved = first.stateDict();
    Optimizer second = factory.apply(List.of(resumed));
    second.loadStateDict(saved);
    train(second, resumed, 3, 6, dtype);

    assertArrayEquals(straight.toDoubleArray(), resumed.toDoubleArray(), 0.0);
    assertEquals(6, second.steps());
  }

  @Test
  void adamStateDictResumesExactly() {
    assertResumeIsExact(params -> new Adam(params).learningRate(0.05), DType.FLOAT64);
    assertResumeIsExact(params -> new Adam(params).learningRate(0.05), DType.FLOAT32);
  }

  @Test
  void adamWStateDictResumesExactly() {
    assertResumeIsExact(params -> new AdamW(params).weightDecay(0.2), DType.FLOAT64);
  }

  @Test
  void sgdStateDictResumesExactly() {
    assertResumeIsExact(params -> new SGD(params, 0.1).momentum(0.9), DType.FLOAT64);
    assertResumeIsExact(params -> new SGD(params, 0.1).momentum(0.9).nesterov(true), DType.FLOAT32);
  }

  /** The optimizer owns what it loads, so a memory scope around the load must not release it. */
  @Test
  void loadInsideScopeKeepsState() {
    Tensor straight = startParam(DType.FLOAT32);
    train(new Adam(List.of(straight)).learningRate(0.05), straight, 0, 4, DType.FLOAT32);

    Tensor resumed = startParam(DType.FLOAT32);
    Optimizer first = new Adam(List.of(resumed)).learningRate(0.05);
    train(first, resumed, 0, 2, DType.FLOAT32);
    Optimizer second = new Adam(List.of(resumed)).learningRate(0.05);
    try (var _ = MemoryScope.open()) {
      second.loadStateDict(first.stateDict());
    }
    train(second, resumed, 2, 4, DType.FLOAT32);

    assertArrayEquals(straight.toDoubleArray(), resumed.toDoubleArray(), 0.0);
  }

  @Test
  void stateDictNamesEntriesByIndex() {
    Tensor a = param(1.0, 2.0);
    Tensor b = param(3.0);
    Adam adam = new Adam(List.of(a, b)).learningRate(0.02);
    a.setGrad(Tensor.of(new double[] {1.0, 1.0}, 2));
    adam.step();

    Map<String, Tensor> dict = adam.stateDict();

    assertEquals(
        List.of("step", "lr", "0.step", "0.exp_avg", "0.exp_avg_sq"), List.copyOf(dict.keySet()));
    assertEquals(1.0, dict.get("step").item());
    assertEquals(0.02, dict.get("lr").item());
    assertEquals(0, dict.get("step").dim());
  }

  @Test
  void stateDictIsACopy() {
    Tensor p = param(1.0);
    SGD sgd = new SGD(List.of(p), 0.1).momentum(0.9);
    p.setGrad(Tensor.of(new double[] {1.0}, 1));
    sgd.step();

    Map<String, Tensor> dict = sgd.stateDict();
    sgd.step();

    assertEquals(1.0, dict.get("0.momentum_buffer").get(0));
    assertNotEquals(1.0, sgd.stateDict().get("0.momentum_buffer").get(0));
  }

  @Test
  void loadStateDictRestoresLearningRate() {
    Tensor p = param(1.0);
    SGD source = new SGD(List.of(p), 0.025);
    SGD target = new SGD(List.of(p), 0.5);

    target.loadStateDict(source.stateDict());

    assertEquals(0.025, target.learningRate());
  }

  /** Returns a valid two-parameter Adam state dict after one step. */
  private static Map<String, Tensor> adamDict() {
    Tensor a = param(1.0, 2.0);
    Tensor b = param(3.0);
    Adam adam = new Adam(List.of(a, b));
    a.setGrad(Tensor.of(new double[] {1.0, 1.0}, 2));
    b.setGrad(Tensor.of(new double[] {1.0}, 1));
    adam.step();
    return new LinkedHashMap<>(adam.stateDict());
  }

  private static String loadError(Map<String, Tensor> dict) {
    Adam target = new Adam(List.of(param(0.0, 0.0), param(0.0)));
    var error = assertThrows(IllegalArgumentException.class, () -> target.loadStateDict(dict));
    assertEquals(0, target.steps());
    return error.getMessage();
  }

  @Test
  void loadStateDictRejectsWrongShape() {
    Map<String, Tensor> dict = adamDict();
    dict.put("1.exp_avg", Tensor.zeros(DType.FLOAT64, 2));

    String message = loadError(dict);

    assertTrue(message.contains("\"1.exp_avg\" has shape [2]"), message);
    assertTrue(message.contains("parameter 1 has shape [1]"), message);
  }

  @Test
  void loadStateDictRejectsUnknownName() {
    Map<String, Tensor> dict = adamDict();
    dict.put("0.momentum_buffer", Tensor.zeros(DType.FLOAT64, 2));

    String message = loadError(dict);

    assertTrue(message.contains("\"0.momentum_buffer\" is unknown"), message);
  }

  @Test
  void loadStateDictRejectsExtraParameter() {
    Map<String, Tensor> dict = adamDict();
    dict.put("2.exp_avg", Tensor.zeros(DType.FLOAT64, 1));

    String message = loadError(dict);

    assertTrue(message.contains("names parameter 2"), message);
    assertTrue(message.contains("has 2 parameters"), message);
  }

  @Test
  void loadStateDictRejectsPartialState() {
    Map<String, Tensor> dict = adamDict();
    dict.remove("0.exp_avg_sq");

    String message = loadError(dict);

    assertTrue(message.contains("lacks [exp_avg_sq]"), message);
  }

  @Test
  void loadStateDictRejectsMissingStep() {
    Map<String, Tensor> dict = adamDict();
    dict.remove("step");

    String message = loadError(dict);

    assertTrue(message.contains("no \"step\" entry"), message);
  }

  @Test
  void loadStateDictRejectsMalformedKey() {
    List<String> messages = new ArrayList<>();
    for (String key : List.of("exp_avg", "x.exp_avg", "0.")) {
      Map<String, Tensor> dict = adamDict();
      dict.put(key, Tensor.zeros(DType.FLOAT64, 1));
      messages.add(loadError(dict));
    }

    for (String message : messages) {
      assertTrue(message.contains("is invalid"), message);
    }
  }
}
