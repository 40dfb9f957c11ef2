package dev.kiln.keypoints.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.init.Init;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** The built-in models: their sizes, a forward pass each, and name resolution. */
class ModelPresetsTest {

  static List<String> presetNames() {
    return ModelPresets.names();
  }

  @ParameterizedTest
  @CsvSource({
    "default, 1017848",
    "naimishnet, 7623096",
    "lenet-20m, 19923756",
    "lenet-48m, 48673896",
  })
  void presetHasExactParameterCount(String name, long expected) {
    assertEquals(expected, ModelPresets.byName(name).parameterCount());
  }

  @ParameterizedTest
  @CsvSource({
    "default, 44419072",
    "naimishnet, 65376128",
    "lenet-20m, 867737056",
    "lenet-48m, 247460352",
  })
  void presetHasExactMacCount(String name, long expected) {
    assertEquals(expected, ModelPresets.byName(name).multiplyAccumulates());
  }

  @Test
  void lenet20mFlattensTo9216() {
    ModelSpec spec = ModelPresets.byName("lenet-20m");

    assertArrayEquals(new int[] {9216}, spec.inputShapeOf(indexOfFlatten(spec) + 1));
  }

  @Test
  void lenet48mFlattensTo10816() {
    ModelSpec spec = ModelPresets.byName("lenet-48m");

    assertArrayEquals(new int[] {10816}, spec.inputShapeOf(indexOfFlatten(spec) + 1));
  }

  @Test
  void naimishnetFlattensTo6400() {
    ModelSpec spec = ModelPresets.byName("naimishnet");

    assertArrayEquals(new int[] {6400}, spec.inputShapeOf(indexOfFlatten(spec) + 1));
  }

  @Test
  void naimishnetLinearLayersUseXavierUniform() {
    List<Layer> layers = ModelPresets.byName("naimishnet").layers();

    List<WeightInit> inits =
        layers.stream()
            .filter(layer -> layer instanceof Layer.Linear)
            .map(layer -> ((Layer.Linear) layer).init())
            .toList();

    assertEquals(
        List.of(WeightInit.XAVIER_UNIFORM, WeightInit.XAVIER_UNIFORM, WeightInit.XAVIER_UNIFORM),
        inits);
  }

  /**
   * The default model must train to its accuracy within 20 minutes on 2 cores: at 44 M
   * multiply-accumulates per image it ran 62 epochs in about 16 minutes on a 2-core AMD EPYC, so 50
   * M leaves little room to grow.
   */
  @Test
  void defaultPresetFitsCpuBudget() {
    ModelSpec spec = ModelPresets.byName("default");

    assertTrue(spec.parameterCount() <= 1_500_000, spec.summary());
    assertTrue(spec.multiplyAccumulates() <= 50_000_000, spec.summary());
  }

  @ParameterizedTest
  @MethodSource("presetNames")
  void presetForwardGivesTwoBy136(String name) {
    ModelSpec spec = ModelPresets.byName(name);
    Generator generator = new Generator(3);
    Sequential model = spec.build(DType.FLOAT32, generator);
    int[] image = spec.inputShape();
    Tensor images = Tensor.zeros(DType.FLOAT32, 2, image[0], image[1], image[2]);
    Init.normal(images, 0, 1, generator);

    Tensor output;
    try (var scope = GradMode.noGrad()) {
      output = model.forward(images);
    }

    assertArrayEquals(new int[] {2, 136}, output.shape());
    assertEquals(spec.parameterCount(), model.parameterCount());
  }

  @ParameterizedTest
  @MethodSource("presetNames")
  void presetTextRoundTrips(String name) {
    ModelSpec spec = ModelPresets.byName(name);

    ModelSpec again = ModelSpec.parse(spec.toText(), "written " + name);

    assertEquals(spec, again);
  }

  @Test
  void unknownPresetListsNames() {
    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> ModelPresets.byName("resnet"));

    assertTrue(error.getMessage().contains("default, naimishnet, lenet-20m, lenet-48m"));
    assertTrue(error.getMessage().contains("or give the path of a model file"));
  }

  @Test
  void resolveFindsPresetByName() throws IOException {
    assertEquals(ModelPresets.byName("naimishnet"), ModelPresets.resolve("naimishnet"));
  }

  @Test
  void resolveReadsModelFile(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("default");
    Files.writeString(file, "input 1x8x8\nflatten\nlinear 136\n");

    ModelSpec spec = ModelPresets.resolve(file.toString());

    assertEquals(
        List.of(new Layer.Flatten(), new Layer.Linear(136, true, WeightInit.DEFAULT)),
        spec.layers());
  }

  @Test
  void resolveUnknownNameListsPresets(@TempDir Path folder) {
    String missing = folder.resolve("missing.model").toString();

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> ModelPresets.resolve(missing));

    assertTrue(error.getMessage().contains("is not a preset (default, naimishnet"));
    assertTrue(error.getMessage().contains("no model file exists at"));
  }

  private static int indexOfFlatten(ModelSpec spec) {
    return spec.layers().indexOf(new Layer.Flatten());
  }
}
