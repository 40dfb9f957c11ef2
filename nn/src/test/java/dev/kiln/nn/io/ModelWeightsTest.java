package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelWeightsTest {
  /** An int64 tensor that a model does not have, as in a transformer's file. */
  private static final String INT64_POSITION_IDS =
      "\"position_ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[12,28]}";

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
    assertTrue(error.getMessage().contains("unexpected tensors [1.bias,"), error.getMessage());
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

  /** Returns a Linear(2, 1) inside a Sequential, so its tensors are 0.weight and 0.bias. */
  private static Module linear() {
    return new Sequential(new Linear(2, 1));
  }

  /**
   * Writes 0.weight = [[1, 2]] and 0.bias = [3] in F32, then {@code extraEntries} (header JSON
   * whose data offsets start at 12) with {@code extraData}.
   */
  private Path writeLinearWith(String extraEntries, byte[] extraData) throws IOException {
    String header =
        "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
            + "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
            + extraEntries
            + "}";
    ByteBuffer data = ByteBuffer.allocate(12 + extraData.length).order(ByteOrder.LITTLE_ENDIAN);
    data.putFloat(1).putFloat(2).putFloat(3).put(extraData);
    return RawSafetensors.write(folder, "linear.safetensors", header, data.array());
  }

  @Test
  void nonStrictLoadSkipsExtraInt64Tensor() throws IOException {
    Path file = writeLinearWith(INT64_POSITION_IDS, new byte[16]);
    Module model = linear();

    ModelWeights.load(model, file, false);

    assertArrayEquals(new float[] {1, 2}, model.stateDict().get("0.weight").toFloatArray());
    assertArrayEquals(new float[] {3}, model.stateDict().get("0.bias").toFloatArray());
  }

  @Test
  void strictLoadReportsExtraInt64TensorAsUnexpected() throws IOException {
    Path file = writeLinearWith(INT64_POSITION_IDS, new byte[16]);
    Module model = linear();
    float[] before = model.stateDict().get("0.weight").toFloatArray();

    IOException error = assertThrows(IOException.class, () -> ModelWeights.load(model, file, true));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(
        error.getMessage().contains("unexpected tensors [position_ids]"), error.getMessage());
    assertFalse(error.getMessage().contains("I64"), error.getMessage());
    assertArrayEquals(before, model.stateDict().get("0.weight").toFloatArray());
  }

  @Test
  void strictLoadSkipsPyTorchBatchCounters() throws IOException {
    String counters =
        "\"num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[12,20]},"
            + "\"0.num_batches_tracked\":"
            + "{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[20,28]}";
    Path file = writeLinearWith(counters, new byte[16]);
    Module model = linear();

    ModelWeights.load(model, file, true);

    assertArrayEquals(new float[] {1, 2}, model.stateDict().get("0.weight").toFloatArray());
  }

  @Test
  void strictLoadRejectsBatchCounterLookalikes() throws IOException {
    for (String name : List.of("0.my_num_batches_tracked", "0num_batches_tracked")) {
      String entry = "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}";
      Path file = writeLinearWith(entry, new byte[4]);
      Module model = linear();

      IOException error =
          assertThrows(IOException.class, () -> ModelWeights.load(model, file, true), name);

      assertTrue(
          error.getMessage().contains("unexpected tensors [" + name + "]"), error.getMessage());
    }
  }
}
