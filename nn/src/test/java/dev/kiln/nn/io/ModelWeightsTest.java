package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.ReLU;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelWeightsTest {
  @TempDir Path folder;

  private static Module model(long seed) {
    Generator g = new Generator(seed);
    return new Sequential(
        new Conv2d(
            1,
            2,
            new int[] {3, 3},
            new int[] {1, 1},
            new int[] {1, 1},
            new int[] {1, 1},
            true,
            DType.FLOAT32,
            g),
        new BatchNorm2d(2),
        new ReLU(),
        new Flatten(),
        new Linear(2 * 4 * 4, 3, true, DType.FLOAT32, g));
  }

  @Test
  void stateDictUsesPyTorchNames() {
    assertEquals(
        Set.of(
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "4.weight",
            "4.bias"),
        model(1).stateDict().keySet());
  }

  @Test
  void saveThenLoadReproducesOutputs() throws IOException {
    Module original = model(1);
    Init.uniform(
        ((BatchNorm2d) ((Sequential) original).get(1)).runningVar(), 1, 2, new Generator(4));
    Path file = folder.resolve("weights.safetensors");
    ModelWeights.save(original, file, Map.of("epoch", "3"));

    Module restored = model(2);
    Map<String, String> metadata = ModelWeights.load(restored, file, true);

    Tensor x = Init.uniform(Tensor.zeros(DType.FLOAT32, 2, 1, 4, 4), -1, 1, new Generator(9));
    original.eval();
    restored.eval();
    try (var _ = GradMode.noGrad()) {
      assertArrayEquals(original.forward(x).toFloatArray(), restored.forward(x).toFloatArray());
    }
    assertEquals("3", metadata.get("epoch"));
  }

  @Test
  void loadIntoOtherArchitectureFailsAndChangesNothing() throws IOException {
    Path file = folder.resolve("weights.safetensors");
    ModelWeights.save(model(1), file, Map.of());
    Module other = new Sequential(new Linear(4, 3));
    float[] before = other.parameters().get(0).toFloatArray();

    IOException error = assertThrows(IOException.class, () -> ModelWeights.load(other, file, true));

    assertTrue(error.getMessage().contains("weights.safetensors"), error.getMessage());
    assertTrue(error.getMessage().contains("missing"), error.getMessage());
    assertArrayEquals(before, other.parameters().get(0).toFloatArray());
  }

  @Test
  void loadConvertsFloat64FileToFloat32Model() throws IOException {
    Module source = model(1).to(DType.FLOAT64);
    Path file = folder.resolve("weights.safetensors");
    ModelWeights.save(source, file, Map.of());

    Module target = model(2);
    ModelWeights.load(target, file, true);

    Tensor weight = target.stateDict().get("4.weight");
    assertEquals(DType.FLOAT32, weight.dtype());
    assertArrayEquals(source.stateDict().get("4.weight").toFloatArray(), weight.toFloatArray());
  }
}
