package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.layers.BatchNorm1d;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.optim.Adam;
import java.util.List;
import org.junit.jupiter.api.Test;

class ModuleTest {

  /** A module with a named child, as user models are written. */
  static final class TwoBlocks extends Module {
    final Sequential features;
    final BatchNorm1d bn1;
    final Linear head;

    TwoBlocks() {
      Generator g = new Generator(1);
      features =
          registerModule(
              "features",
              new Sequential(
                  new Conv2d(
                      1,
                      2,
                      new int[] {3, 3},
                      new int[] {1, 1},
                      new int[] {0, 0},
                      new int[] {1, 1},
                      true,
                      DType.FLOAT32,
                      g),
                  new ReLU(),
                  new Flatten()));
      bn1 = registerModule("bn1", new BatchNorm1d(8));
      head = registerModule("head", new Linear(8, 3, true, DType.FLOAT32, g));
    }

    @Override
    public Tensor forward(Tensor input) {
      return head.forward(bn1.forward(features.forward(input)));
    }
  }

  @Test
  void namesFollowPyTorch() {
    assertEquals(
        List.of(
            "features.0.weight",
            "features.0.bias",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "head.weight",
            "head.bias"),
        List.copyOf(new TwoBlocks().stateDict().keySet()));
  }

  @Test
  void parametersExcludeBuffers() {
    TwoBlocks model = new TwoBlocks();

    assertEquals(6, model.parameters().size());
    assertEquals(
        List.of("bn1.running_mean", "bn1.running_var"), List.copyOf(model.namedBuffers().keySet()));
  }

  @Test
  void parameterCountSumsAllLayers() {
    assertEquals(2 * 9 + 2 + 8 + 8 + 8 * 3 + 3, new TwoBlocks().parameterCount());
  }

  @Test
  void evalAndTrainReachEveryDescendant() {
    TwoBlocks model = new TwoBlocks();

    model.eval();
    assertFalse(model.features.get(0).isTraining());
    assertFalse(model.bn1.isTraining());
    model.train();
    assertTrue(model.head.isTraining());
  }

  @Test
  void toStringShowsTreeShapesAndCounts() {
    String text = new TwoBlocks().toString();

    assertTrue(text.contains("(features): Sequential("), text);
    assertTrue(text.contains("(0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))"), text);
    assertTrue(text.contains("weight [2, 1, 3, 3], bias [2]  20 params"), text);
    assertTrue(text.contains("(bn1): BatchNorm1d(8, eps=1.0E-5"), text);
    assertTrue(text.endsWith("Total parameters: 63"), text);
  }

  @Test
  void duplicateNameIsRejected() {
    Module module =
        new Module() {
          {
            registerParameter("w", Tensor.zeros(DType.FLOAT32, 2));
          }

          @Override
          public Tensor forward(Tensor input) {
            return input;
          }
        };

    assertThrows(
        IllegalArgumentException.class,
        () -> module.registerBuffer("w", Tensor.zeros(DType.FLOAT32, 2)));
  }

  @Test
  void toFloat64ConvertsInPlace() {
    TwoBlocks model = new TwoBlocks();
    Tensor weight = model.head.weight();
    float[] before = weight.toFloatArray();

    model.to(DType.FLOAT64);

    assertEquals(DType.FLOAT64, weight.dtype());
    assertEquals(DType.FLOAT64, model.bn1.runningVar().dtype());
    assertArrayEquals(before, weight.toFloatArray());
  }

  @Test
  void batchNormEvalUsesRunningStatistics() {
    BatchNorm2d bn = new BatchNorm2d(1);
    bn.runningMean().set(2.0, 0);
    bn.runningVar().set(4.0, 0);
    Tensor x = Tensor.full(6.0, DType.FLOAT32, 2, 1, 1, 1);

    bn.eval();
    Tensor y = bn.forward(x);

    assertEquals((6.0 - 2.0) / Math.sqrt(4.0 + 1e-5), y.get(0, 0, 0, 0), 1e-6);
  }

  @Test
  void batchNormChannelMismatchShowsShape() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new BatchNorm2d(3).forward(Tensor.zeros(DType.FLOAT32, 2, 4, 5, 5)));

    assertTrue(error.getMessage().contains("[2, 4, 5, 5]"), error.getMessage());
  }

  @Test
  void dropoutScalesKeptValuesInTraining() {
    Dropout dropout = new Dropout(0.25, new Generator(3));
    Tensor y = dropout.forward(Tensor.ones(DType.FLOAT64, 10000));

    int kept = 0;
    for (double v : y.toDoubleArray()) {
      assertTrue(v == 0.0 || Math.abs(v - 1 / 0.75) < 1e-12, "value " + v);
      kept += v == 0.0 ? 0 : 1;
    }
    assertEquals(0.75, kept / 10000.0, 0.02);
  }

  /**
   * A dropout layer without a generator would fail only at its first training pass, and the doctor,
   * which saves every dropout layer's generator state, on any model that contains it.
   */
  @Test
  void dropoutRejectsMissingGenerator() {
    NullPointerException error =
        assertThrows(NullPointerException.class, () -> new Dropout(0.5, null));

    assertTrue(error.getMessage().contains("new Dropout(p)"), error.getMessage());
  }

  @Test
  void dropoutIsIdentityInEval() {
    Tensor x = Tensor.ones(DType.FLOAT32, 100);

    assertArrayEquals(x.toFloatArray(), new Dropout(0.5).eval().forward(x).toFloatArray());
  }

  /** Two runs with the same seed give bit-identical losses and weights on the CPU. */
  @Test
  void seededTrainingIsBitReproducible() {
    assertArrayEquals(trainAndReport(77), trainAndReport(77));
  }

  private static float[] trainAndReport(long seed) {
    Generator g = new Generator(seed);
    Sequential model =
        new Sequential(
            new Linear(6, 16, true, DType.FLOAT32, g),
            new ReLU(),
            new Dropout(0.3, g),
            new Linear(16, 2, true, DType.FLOAT32, g));
    Tensor x = Init.uniform(Tensor.zeros(DType.FLOAT32, 5, 6), -1, 1, g);
    Tensor t = Init.uniform(Tensor.zeros(DType.FLOAT32, 5, 2), -1, 1, g);
    Adam optimizer = new Adam(model.parameters()).learningRate(0.01);
    float[] report = new float[20 + 16 * 6];
    for (int step = 0; step < 20; step++) {
      optimizer.zeroGrad();
      Tensor loss = new MSELoss().compute(model.forward(x), t);
      loss.backward();
      optimizer.step();
      report[step] = (float) loss.item();
    }
    System.arraycopy(model.parameters().get(0).toFloatArray(), 0, report, 20, 16 * 6);
    return report;
  }

  @Test
  void sharedLayerCountsOnce() {
    Linear shared = new Linear(2, 2);
    Sequential model = new Sequential(shared, new ReLU(), shared);

    assertEquals(2, model.parameters().size());
    assertEquals(6, model.parameterCount());
    assertEquals(4, model.stateDict().size());
  }

  @Test
  void nonStrictLoadReportsUnmatchedNames() {
    Sequential model = new Sequential(new Linear(2, 2));
    var state = new java.util.LinkedHashMap<String, Tensor>();
    state.put("0.weight", Tensor.zeros(DType.FLOAT32, 2, 2));
    state.put("extra", Tensor.zeros(DType.FLOAT32, 1));

    Module.LoadResult result = model.loadStateDict(state, false);

    assertEquals(java.util.Set.of("0.bias"), result.missing());
    assertEquals(java.util.Set.of("extra"), result.unexpected());
  }

  @Test
  void loadStateDictUpdatesViews() {
    Linear layer = new Linear(2, 2);
    Tensor weight = layer.weight();
    Tensor view = weight.view(4);
    var state = new java.util.LinkedHashMap<String, Tensor>();
    state.put("weight", Tensor.of(new double[] {1, 2, 3, 4}, 2, 2));
    state.put("bias", Tensor.of(new double[] {5, 6}, 2));

    layer.loadStateDict(state, true);

    assertSame(weight, layer.weight());
    assertEquals(DType.FLOAT32, weight.dtype());
    assertArrayEquals(new float[] {1, 2, 3, 4}, weight.toFloatArray());
    assertArrayEquals(new float[] {1, 2, 3, 4}, view.toFloatArray());
    assertArrayEquals(new float[] {5, 6}, layer.bias().toFloatArray());
  }

  @Test
  void loadStateDictDropsGradients() {
    Linear layer = new Linear(2, 1);
    layer.forward(Tensor.ones(DType.FLOAT32, 1, 2)).sum().backward();

    layer.loadStateDict(new Linear(2, 1).stateDict(), true);

    assertNull(layer.weight().grad());
    assertNull(layer.bias().grad());
  }

  // ---- Registration check --------------------------------------------------------------------

  /** Forgets to register {@code b}, as a PyTorch user would write the module. */
  static final class UnregisteredChild extends Module {
    final Linear a = registerModule("a", new Linear(4, 4));
    final Linear b = new Linear(4, 2);

    @Override
    public Tensor forward(Tensor input) {
      return b.forward(a.forward(input));
    }
  }

  @Test
  void unregisteredChildIsRejected() {
    UnregisteredChild model = new UnregisteredChild();
    List<org.junit.jupiter.api.function.Executable> calls =
        List.of(
            model::parameters,
            model::namedBuffers,
            model::stateDict,
            model::eval,
            model::train,
            model::zeroGrad,
            () -> model.to(DType.FLOAT64),
            () -> model.loadStateDict(java.util.Map.of(), false));

    for (var call : calls) {
      var error = assertThrows(IllegalStateException.class, call);
      assertTrue(
          error.getMessage().startsWith("UnregisteredChild.b refers to a Linear that is not a"),
          error.getMessage());
      assertTrue(error.getMessage().contains("registerModule(\"b\", b)"), error.getMessage());
    }
    assertTrue(model.a.isTraining(), "a failed eval() must change no mode");
    assertEquals(DType.FLOAT32, model.a.weight().dtype());
  }

  @Test
  void unregisteredChildDeepInTreeIsRejected() {
    Sequential model = new Sequential(new ReLU(), new Sequential(new UnregisteredChild()));

    var error = assertThrows(IllegalStateException.class, model::parameters);

    assertTrue(error.getMessage().startsWith("UnregisteredChild.b "), error.getMessage());
  }

  @Test
  void unregisteredParameterTensorIsRejected() {
    Module model =
        new Module() {
          final Tensor scale = Tensor.ones(DType.FLOAT32, 3).requiresGrad(true);

          @Override
          public Tensor forward(Tensor input) {
            return input.mul(scale);
          }
        };

    var error = assertThrows(IllegalStateException.class, model::parameters);

    assertTrue(
        error.getMessage().contains(".scale refers to a tensor of shape [3]"), error.getMessage());
    assertTrue(
        error.getMessage().contains("registerParameter(\"scale\", scale)"), error.getMessage());
  }

  /** Keeps its layers in a plain list, which PyTorch does not register either. */
  static final class UnregisteredList extends Module {
    final List<Linear> layers = List.of(new Linear(2, 2), new Linear(2, 2));

    @Override
    public Tensor forward(Tensor input) {
      return layers.get(1).forward(layers.get(0).forward(input));
    }
  }

  @Test
  void unregisteredListElementIsRejected() {
    var error = assertThrows(IllegalStateException.class, new UnregisteredList()::stateDict);

    assertTrue(
        error.getMessage().startsWith("UnregisteredList.layers (element 0) refers to a Linear"),
        error.getMessage());
  }

  @Test
  void printingSkipsRegistrationCheck() {
    String text = new UnregisteredChild().toString();

    assertTrue(text.endsWith("Total parameters: 20"), text);
  }

  /** Fields that the check must accept: references into the tree and values that are not state. */
  static final class AllowedFields extends Module {
    static final Linear SHARED_CONSTANT = new Linear(1, 1);
    final Sequential body = registerModule("body", new Sequential(new Linear(3, 3), new ReLU()));
    final Linear first = (Linear) body.get(0);
    final Tensor firstWeight = first.weight();
    final Tensor constant = Tensor.ones(DType.FLOAT32, 3);
    final Tensor running = registerBuffer("running", Tensor.zeros(DType.FLOAT32, 3));
    final List<Module> layers = List.of(body, first);
    final Module[] array = {first};
    final java.util.function.UnaryOperator<Tensor> activation = Tensor::relu;
    final Shape shape = new Shape(3, 3);
    final int[] sizes = {3, 3};
    final String label = "allowed";
    transient Linear ownedElsewhere = new Linear(3, 3);
    Module self = this;

    record Shape(int rows, int columns) {}

    @Override
    public Tensor forward(Tensor input) {
      return activation.apply(body.forward(input.mul(constant)));
    }
  }

  @Test
  void registeredReferencesAndConstantsAreAccepted() {
    AllowedFields model = new AllowedFields();

    assertEquals(2, model.parameters().size());
    assertEquals(
        List.of("running", "body.0.weight", "body.0.bias"),
        List.copyOf(model.stateDict().keySet()));
    model.eval();
    assertFalse(model.first.isTraining());
    assertTrue(model.ownedElsewhere.isTraining());
  }

  /** A child that keeps a reference back to its parent, and a weight tied to a sibling's. */
  static final class TiedDecoder extends Module {
    final Linear decoder = registerModule("decoder", new Linear(3, 3));
    final Module parent;
    final Tensor tied;

    TiedDecoder(Module parent, Tensor tied) {
      this.parent = parent;
      this.tied = tied;
    }

    @Override
    public Tensor forward(Tensor input) {
      return decoder.forward(input);
    }
  }

  /** An encoder and a decoder that refers back to it. */
  static final class TiedModel extends Module {
    final Linear encoder = registerModule("encoder", new Linear(3, 3));
    final TiedDecoder decoder = registerModule("decoder", new TiedDecoder(this, encoder.weight()));

    @Override
    public Tensor forward(Tensor input) {
      return decoder.forward(encoder.forward(input));
    }
  }

  @Test
  void referencesElsewhereInTreeAreAccepted() {
    TiedModel model = new TiedModel();

    assertEquals(4, model.parameters().size());
    model.eval();
    assertFalse(model.decoder.decoder.isTraining());
  }

  @Test
  void parentReferenceAcceptedFromSubmodule() {
    Holder parent = new Holder();
    Holder child = new Holder();
    Linear layer = new Linear(2, 2);
    parent.hold("child", child.hold("layer", layer));
    child.parent = parent;

    assertEquals(2, child.parameters().size());
    child.eval();
    assertFalse(layer.isTraining());
    assertTrue(parent.isTraining(), "eval() on the child reached its parent");
  }

  @Test
  void parentOutsideTreeIsRejected() {
    // block registers child, and child refers back to block, but only child joins the tree.
    Holder block = new Holder();
    Holder child = new Holder();
    block.hold("proj", new Linear(2, 2)).hold("child", child.hold("layer", new Linear(2, 2)));
    child.parent = block;
    Holder model = new Holder().hold("child", child);

    var error = assertThrows(IllegalStateException.class, model::parameters);

    assertTrue(
        error.getMessage().startsWith("Holder.parent refers to a Holder"), error.getMessage());
  }

  @Test
  void tiedWeightFieldFailsFromSubmodule() {
    TiedModel model = new TiedModel();

    var error = assertThrows(IllegalStateException.class, model.decoder::parameters);

    assertTrue(
        error.getMessage().startsWith("TiedDecoder.tied refers to a tensor"), error.getMessage());
  }

  @Test
  void nullModuleIsRejectedByName() {
    var error = assertThrows(NullPointerException.class, () -> new Holder().hold("head", null));

    assertTrue(error.getMessage().contains("'head' is null"), error.getMessage());
  }

  /** Keeps tensors in a list, which the check does not read, and modules in a broken list. */
  static final class UnreadCollections extends Module {
    final Linear layer = registerModule("layer", new Linear(2, 2));
    final List<Tensor> history = new java.util.ArrayList<>();
    final List<Module> broken =
        new java.util.AbstractList<>() {
          @Override
          public Module get(int index) {
            throw new UnsupportedOperationException("no elements here");
          }

          @Override
          public int size() {
            return 1;
          }
        };

    @Override
    public Tensor forward(Tensor input) {
      return layer.forward(input);
    }
  }

  @Test
  void unreadableCollectionsAreLeftOut() {
    UnreadCollections model = new UnreadCollections();
    model.history.add(Tensor.ones(DType.FLOAT32, 2).requiresGrad(true));

    assertEquals(2, model.parameters().size());
    model.eval();
    assertFalse(model.layer.isTraining());
  }

  @Test
  void deepNestingChecksEachModuleOnce() {
    Module model = new Linear(2, 2);
    for (int depth = 0; depth < 2000; depth++) {
      model = new Sequential(model, new ReLU());
    }

    model.eval();

    assertEquals(2, model.parameters().size());
    assertFalse(model.isTraining());
  }

  /** Registers whatever module it is given, to try cycles, and may refer back to a parent. */
  static final class Holder extends Module {
    Module parent;

    Holder hold(String name, Module module) {
      registerModule(name, module);
      return this;
    }

    @Override
    public Tensor forward(Tensor input) {
      return input;
    }
  }

  @Test
  void registeringCycleIsRejected() {
    Holder outer = new Holder();
    Holder inner = new Holder();
    outer.hold("inner", inner);

    var self = assertThrows(IllegalArgumentException.class, () -> outer.hold("self", outer));
    var loop = assertThrows(IllegalArgumentException.class, () -> inner.hold("outer", outer));

    assertTrue(self.getMessage().contains("would be a cycle"), self.getMessage());
    assertTrue(loop.getMessage().contains("cannot register Holder as 'outer'"), loop.getMessage());
  }

  @Test
  void sharedModuleRegisteredTwiceIsAccepted() {
    Linear shared = new Linear(2, 2);
    Sequential model = new Sequential(new Sequential(shared), new Sequential(shared));

    assertEquals(2, model.parameters().size());
  }

  @Test
  void optimizerStepBeforeBackwardFails() {
    Linear layer = new Linear(2, 1);
    Tensor loss = layer.forward(Tensor.ones(DType.FLOAT32, 1, 2)).sum();
    loss.backward(Tensor.ones(DType.FLOAT32), true);
    new Adam(layer.parameters()).step();

    assertThrows(IllegalStateException.class, loss::backward);
  }

  @Test
  void batchNormRejectsNegativeEps() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new BatchNorm2d(2, -1, 0.1, true, true, DType.FLOAT32));
  }
}
