package dev.kiln.keypoints.predict;

import static dev.kiln.keypoints.predict.TestCheckpoints.SMALL_MODEL;
import static dev.kiln.keypoints.predict.TestCheckpoints.metadata;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.nn.Sequential;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link KeypointDetector#load} on checkpoints that are not what {@code kiln train} writes: each
 * fails with an IOException that names the file.
 */
class KeypointDetectorLoadTest {

  @TempDir Path dir;

  @Test
  void validCheckpointLoads() throws IOException {
    KeypointDetector detector = KeypointDetector.load(TestCheckpoints.writeSmall(dir));

    assertEquals(96, detector.inputSize());
  }

  @Test
  void missingFileSaysNotFound() {
    Path file = dir.resolve("absent.safetensors");

    var error = assertThrows(NoSuchFileException.class, () -> KeypointDetector.load(file));

    assertEquals(file + ": safetensors file not found", error.getMessage());
  }

  @Test
  void nullPathRaisesNamedError() {
    NullPointerException error =
        assertThrows(NullPointerException.class, () -> KeypointDetector.load(null));

    assertTrue(error.getMessage().contains("checkpointFile"), error.getMessage());
  }

  @Test
  void missingNormalizationFails() throws IOException {
    Map<String, String> metadata = Map.of(RunMetadata.MODEL_SPEC, SMALL_MODEL);
    Path file = TestCheckpoints.write(dir, "bare.safetensors", SMALL_MODEL, metadata);

    IOException error = loadFailure(file);

    assertTrue(
        error.getMessage().contains(KeypointNormalization.INPUT_SIZE_KEY), error.getMessage());
  }

  @Test
  void invalidInputSizeFails() throws IOException {
    Map<String, String> metadata = metadata(SMALL_MODEL, 96);
    metadata.put(KeypointNormalization.INPUT_SIZE_KEY, "ninety-six");
    Path file = TestCheckpoints.write(dir, "size.safetensors", SMALL_MODEL, metadata);

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("ninety-six"), error.getMessage());
  }

  @Test
  void missingModelSpecFails() throws IOException {
    Map<String, String> metadata = new KeypointNormalization(96).toMetadata();
    Path file = TestCheckpoints.write(dir, "nospec.safetensors", SMALL_MODEL, metadata);

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains(RunMetadata.MODEL_SPEC), error.getMessage());
  }

  @Test
  void invalidModelSpecFails() throws IOException {
    Map<String, String> metadata = metadata("input 1x96x96\nwobble 3\n", 96);
    Path file = TestCheckpoints.write(dir, "badspec.safetensors", SMALL_MODEL, metadata);

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("wobble"), error.getMessage());
  }

  @Test
  void modelWithWrongOutputCountFails() throws IOException {
    Map<String, String> metadata = metadata("input 1x96x96\nflatten\nlinear 10\n", 96);
    Path file = TestCheckpoints.write(dir, "ten.safetensors", SMALL_MODEL, metadata);

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("136"), error.getMessage());
  }

  @Test
  void smallerModelInputThanNormalizationFails() throws IOException {
    String model = "input 1x64x64\nflatten\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "small-input.safetensors", model, metadata(model, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("1x64x64"), error.getMessage());
    assertTrue(error.getMessage().contains("1x96x96"), error.getMessage());
  }

  @Test
  void colorModelInputFails() throws IOException {
    String model = "input 3x96x96\nconv 4 kernel=8 stride=8\nflatten\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "color.safetensors", model, metadata(model, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("3x96x96"), error.getMessage());
  }

  @Test
  void inputSizeAboveLimitFails() throws IOException {
    // A valid model: the pooling has no weights, so the file stays small.
    String model = "input 1x50000x50000\nmaxpool 5000\nflatten\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "huge.safetensors", model, metadata(model, 50000));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("50000x50000"), error.getMessage());
    assertTrue(
        error.getMessage().contains(Integer.toString(KeypointDetector.MAX_INPUT_SIZE)),
        error.getMessage());
  }

  @Test
  void modelLargerThanStoredWeightsFails() throws IOException {
    // About 1.8 billion weights, which would take about 7 GiB if built.
    String model = "input 1x96x96\nflatten\nlinear 200000\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "bloated.safetensors", SMALL_MODEL, metadata(model, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("trained values"), error.getMessage());
  }

  @Test
  void layerAboveTensorLimitNamesLine() throws IOException {
    // The linear layer's weight would have 18,432,000,000 values, more than one tensor holds.
    String model = "input 1x96x96\nflatten\nlinear 2000000\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "huge.safetensors", SMALL_MODEL, metadata(model, 96));

    IOException error = loadFailure(file);

    String line = file + " (" + RunMetadata.MODEL_SPEC + "):3: the weight of linear 2000000";
    assertTrue(error.getMessage().startsWith(line), error.getMessage());
    assertTrue(error.getMessage().contains("2^31 - 1"), error.getMessage());
  }

  @Test
  void hugeActivationsFail() throws IOException {
    // About 300,000 weights, but about 922 million values per image in the first layer's output.
    String model =
        "input 1x96x96\nconv 100000 kernel=1\nconv 1 kernel=1\nmaxpool 96\nflatten\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "wide.safetensors", model, metadata(model, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("values per image"), error.getMessage());
  }

  @Test
  void presetsFitActivationLimit() throws IOException {
    for (String preset : List.of("default", "naimishnet", "lenet-20m", "lenet-48m")) {
      double values = ModelPresets.resolve(preset).activationCount();
      assertTrue(
          values < KeypointDetector.MAX_ACTIVATIONS_PER_IMAGE / 10.0, preset + ": " + values);
    }
  }

  @Test
  void weightsOfOtherModelFail() throws IOException {
    String other = "input 1x96x96\nconv 8 kernel=8 stride=8\nrelu\nflatten\nlinear 136\n";
    Path file = TestCheckpoints.write(dir, "other.safetensors", other, metadata(SMALL_MODEL, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("do not fit"), error.getMessage());
  }

  @Test
  void nonFiniteWeightFails() throws IOException {
    ModelSpec spec = ModelSpec.parse(SMALL_MODEL, "small");
    Sequential model = spec.build(DType.FLOAT32, new Generator(1));
    Tensor bias = model.stateDict().get("3.bias");
    float[] values = bias.toFloatArray();
    values[5] = Float.NaN;
    model.loadStateDict(Map.of("3.bias", Tensor.of(values, bias.shape())), false);
    Path file = dir.resolve("diverged.safetensors");
    Checkpoint.save(file, model, null, metadata(SMALL_MODEL, 96));

    IOException error = loadFailure(file);

    assertTrue(error.getMessage().contains("element 5 of model.3.bias is NaN"), error.getMessage());
    assertTrue(error.getMessage().contains("before the divergence"), error.getMessage());
  }

  /** Loads {@code file}, expecting an IOException whose message names the file. */
  private static IOException loadFailure(Path file) {
    IOException error = assertThrows(IOException.class, () -> KeypointDetector.load(file));
    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    return error;
  }
}
