package dev.kiln.keypoints.predict;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.transform.KeypointNormalization;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writers of small checkpoints, valid or with chosen defects, in a test's temp folder. Public, so
 * that the command-line tests can run a model that is fast on the emulated device.
 */
public final class TestCheckpoints {

  /** A model small enough to build and run in milliseconds: 96 -> 12x12x4 -> 136. */
  static final String SMALL_MODEL =
      """
      input 1x96x96
      conv 4 kernel=8 stride=8
      relu
      flatten
      linear 136
      """;

  private TestCheckpoints() {}

  /** Returns the metadata that {@code kiln train} writes for {@code modelText}. */
  static Map<String, String> metadata(String modelText, int inputSize) {
    Map<String, String> metadata =
        new LinkedHashMap<>(new KeypointNormalization(inputSize).toMetadata());
    metadata.put(RunMetadata.MODEL_SPEC, modelText);
    return metadata;
  }

  /**
   * Writes {@code folder/name} with the weights of {@code weightsModel}, drawn from seed 1, and
   * {@code metadata} as it is, which may contradict the weights.
   */
  static Path write(Path folder, String name, String weightsModel, Map<String, String> metadata)
      throws IOException {
    ModelSpec spec = ModelSpec.parse(weightsModel, name);
    Path file = folder.resolve(name);
    Checkpoint.save(file, spec.build(DType.FLOAT32, new Generator(1)), null, metadata);
    return file;
  }

  /** Writes a valid checkpoint of {@link #SMALL_MODEL}. */
  public static Path writeSmall(Path folder) throws IOException {
    return write(folder, "small.safetensors", SMALL_MODEL, metadata(SMALL_MODEL, 96));
  }
}
