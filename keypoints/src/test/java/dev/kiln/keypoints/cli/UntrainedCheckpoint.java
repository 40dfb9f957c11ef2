package dev.kiln.keypoints.cli;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.transform.KeypointNormalization;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A checkpoint of the default preset with its initial weights, for tests of commands that only need
 * a loadable model. It takes a fraction of a second to write, where a training run takes many
 * seconds.
 */
final class UntrainedCheckpoint {
  private UntrainedCheckpoint() {}

  /**
   * Writes {@code folder/untrained.safetensors} with the metadata that {@code kiln train} saves.
   */
  static Path write(Path folder) throws IOException {
    String text = ModelPresets.text("default");
    ModelSpec spec = ModelSpec.parse(text, "preset default");
    Map<String, String> metadata =
        new LinkedHashMap<>(new KeypointNormalization(spec.inputShape()[1]).toMetadata());
    metadata.put(RunMetadata.MODEL_SPEC, text);

    Path file = folder.resolve("untrained.safetensors");
    Checkpoint.save(file, spec.build(DType.FLOAT32, new Generator(1)), null, metadata);
    return file;
  }
}
