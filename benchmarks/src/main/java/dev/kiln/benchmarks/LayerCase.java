package dev.kiln.benchmarks;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.keypoints.model.Layer;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.nn.Module;
import dev.kiln.nn.layers.AvgPool2d;
import dev.kiln.nn.layers.BatchNorm1d;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One layer of a keypoint preset at the input shape it receives in that model, named {@code
 * PRESET/INDEX-KIND}: {@code default/4-conv} is layer 4 of the {@code default} preset, a conv. The
 * index counts the layer lines of the preset from 0, so it matches {@link ModelSpec#layers()}.
 *
 * <p>Two kinds stand in for a layer that no preset uses, at the shape of a layer that does: {@code
 * avgpool} at the index of a maxpool, with its kernel, stride and padding, and {@code batchnorm1d}
 * at the index of any layer with a flat input.
 *
 * @param name the case name, {@code PRESET/INDEX-KIND}
 * @param preset the preset name
 * @param index the layer index within the preset
 * @param kind the layer keyword of the model format, or {@code avgpool} or {@code batchnorm1d}
 */
public record LayerCase(String name, String preset, int index, String kind) {

  /** Kinds that stand in for a layer of another kind; see the type's documentation. */
  private static final String AVGPOOL = "avgpool";

  private static final String BATCHNORM_1D = "batchnorm1d";

  /**
   * Parses a case name and checks it against the preset.
   *
   * @throws IllegalArgumentException for a malformed name, an unknown preset, an index out of
   *     range, or a kind that does not fit the layer at that index
   */
  public static LayerCase parse(String name) {
    int slash = name.indexOf('/');
    int dash = name.indexOf('-', slash + 1);
    if (slash < 1 || dash < slash + 2 || dash == name.length() - 1) {
      throw new IllegalArgumentException(
          "invalid layer case '" + name + "': expected PRESET/INDEX-KIND, such as default/0-conv");
    }
    String preset = name.substring(0, slash);
    String kind = name.substring(dash + 1);
    int index;
    try {
      index = Integer.parseInt(name.substring(slash + 1, dash));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "invalid layer case '" + name + "': the index between '/' and '-' is not a number", e);
    }
    ModelSpec spec = ModelPresets.byName(preset);
    if (index < 0 || index >= spec.layers().size()) {
      throw new IllegalArgumentException(
          "invalid layer case '"
              + name
              + "': preset "
              + preset
              + " has layers 0 to "
              + (spec.layers().size() - 1));
    }
    String actual = keyword(spec.layers().get(index));
    boolean fits =
        kind.equals(actual)
            || (kind.equals(AVGPOOL) && actual.equals("maxpool"))
            || (kind.equals(BATCHNORM_1D) && spec.inputShapeOf(index).length == 1);
    if (!fits) {
      throw new IllegalArgumentException(
          "invalid layer case '"
              + name
              + "': layer "
              + index
              + " of preset "
              + preset
              + " is "
              + actual
              + ", so the case must end in -"
              + actual);
    }
    return new LayerCase(name, preset, index, kind);
  }

  /**
   * Returns every case that the layer benchmark runs: each layer of each preset except flatten,
   * which only reshapes, with repeats of the same layer at the same input shape left out, then the
   * stand-in cases ({@code avgpool} at each maxpool of {@code default}, {@code batchnorm1d} at each
   * flat input of {@code default}).
   */
  public static List<LayerCase> all() {
    Map<String, LayerCase> byLayerAndShape = new LinkedHashMap<>();
    for (String preset : ModelPresets.names()) {
      ModelSpec spec = ModelPresets.byName(preset);
      for (int i = 0; i < spec.layers().size(); i++) {
        Layer layer = spec.layers().get(i);
        String kind = keyword(layer);
        if (kind.equals("flatten")) {
          continue;
        }
        String key = layer.toText() + " @ " + java.util.Arrays.toString(spec.inputShapeOf(i));
        byLayerAndShape.putIfAbsent(key, of(preset, i, kind));
      }
    }
    List<LayerCase> cases = new ArrayList<>(byLayerAndShape.values());

    ModelSpec standIns = ModelPresets.byName("default");
    for (int i = 0; i < standIns.layers().size(); i++) {
      String kind = keyword(standIns.layers().get(i));
      if (kind.equals("maxpool")) {
        cases.add(of("default", i, AVGPOOL));
      }
    }
    for (int i = 0; i < standIns.layers().size(); i++) {
      String kind = keyword(standIns.layers().get(i));
      if (standIns.inputShapeOf(i).length == 1 && !kind.equals("flatten")) {
        cases.add(of("default", i, BATCHNORM_1D));
      }
    }
    return cases;
  }

  private static LayerCase of(String preset, int index, String kind) {
    return new LayerCase(preset + "/" + index + "-" + kind, preset, index, kind);
  }

  /** Returns the first word of a layer's model-format line, such as {@code conv} or {@code elu}. */
  static String keyword(Layer layer) {
    String text = layer.toText();
    int space = text.indexOf(' ');
    return space < 0 ? text : text.substring(0, space);
  }

  /** Shape of one sample at this layer's input: [C, H, W], or [features] after flatten. */
  public int[] inputShape() {
    return ModelPresets.byName(preset).inputShapeOf(index);
  }

  /** Creates the layer in float32, in training mode, with weights drawn from {@code generator}. */
  public Module build(Generator generator) {
    ModelSpec spec = ModelPresets.byName(preset);
    Layer layer = spec.layers().get(index);
    int[] input = spec.inputShapeOf(index);
    Module module =
        switch (kind) {
          case AVGPOOL -> {
            Layer.MaxPool pool = (Layer.MaxPool) layer;
            yield new AvgPool2d(pool.kernel(), pool.stride(), pool.padding());
          }
          case BATCHNORM_1D -> new BatchNorm1d(input[0]);
          default -> layer.build(input, DType.FLOAT32, generator);
        };
    module.train();
    return module;
  }

  /**
   * Floating-point operations of the forward pass over {@code batch} samples: 2 per
   * multiply-accumulate of a conv or linear layer, bias additions left out. Returns 0 for the other
   * kinds, whose cost is counted by {@link #values}.
   */
  public long forwardFlop(int batch) {
    ModelSpec spec = ModelPresets.byName(preset);
    return 2L * batch * spec.layers().get(index).multiplyAccumulates(spec.inputShapeOf(index));
  }

  /**
   * Floating-point operations of the backward pass over {@code batch} samples, when both the input
   * gradient and the weight gradient are computed: twice those of the forward pass.
   */
  public long backwardFlop(int batch) {
    return 2 * forwardFlop(batch);
  }

  /** Number of input values over {@code batch} samples: the work measure of layers without MACs. */
  public long values(int batch) {
    long count = batch;
    for (int size : inputShape()) {
      count *= size;
    }
    return count;
  }
}
