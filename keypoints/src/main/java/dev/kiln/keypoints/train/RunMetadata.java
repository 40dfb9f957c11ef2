package dev.kiln.keypoints.train;

import dev.kiln.keypoints.model.ModelSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;

/** Names and formats of the string metadata that kiln keeps in its checkpoints. */
public final class RunMetadata {
  /** State of the generator behind the dropout masks, as comma-separated longs. */
  public static final String GENERATOR = "generator_state";

  /** The model description in the model-file format, so a checkpoint can rebuild its model. */
  public static final String MODEL_SPEC = "model_spec";

  private RunMetadata() {}

  /** Returns {@code metadata.get(key)}, or throws an error that names the missing key. */
  public static String require(Map<String, String> metadata, String key) throws IOException {
    String value = metadata.get(key);
    if (value == null) {
      throw new IOException(
          "checkpoint metadata has no '"
              + key
              + "': the file was not written by kiln's trainer, or by an older version");
    }
    return value;
  }

  /**
   * Returns {@code metadata.get(key)} from the checkpoint {@code file}, or throws an error that
   * names the file and the missing key.
   */
  public static String require(Map<String, String> metadata, String key, Path file)
      throws IOException {
    String value = metadata.get(key);
    if (value == null) {
      throw new IOException(
          file
              + ": checkpoint metadata has no '"
              + key
              + "' entry, so the file was not written by kiln train or comes from an older"
              + " version; pass a best.safetensors or last.safetensors file from a current"
              + " training run, or retrain");
    }
    return value;
  }

  /**
   * Parses the model description stored in the checkpoint {@code file}.
   *
   * @throws IOException naming the file, if the description is missing or invalid
   */
  public static ModelSpec modelSpec(Map<String, String> metadata, Path file) throws IOException {
    String text = require(metadata, MODEL_SPEC, file);
    try {
      return ModelSpec.parse(text, file + " (" + MODEL_SPEC + ")");
    } catch (IllegalArgumentException e) {
      // ModelSpec's message already names the file and the line.
      throw new IOException(
          e.getMessage()
              + "; the checkpoint's model description is invalid, so the file was not written by"
              + " kiln train or was changed after; retrain, or pass another checkpoint",
          e);
    }
  }

  /** Formats a generator state for the metadata. */
  public static String formatGeneratorState(long[] state) {
    return Arrays.stream(state).mapToObj(Long::toString).collect(Collectors.joining(","));
  }

  /** Reads the generator state of a checkpoint. */
  public static long[] generatorState(Map<String, String> metadata) throws IOException {
    String text = require(metadata, GENERATOR);
    try {
      return Arrays.stream(text.split(",")).mapToLong(Long::parseLong).toArray();
    } catch (NumberFormatException e) {
      throw new IOException("checkpoint generator state '" + text + "' is invalid", e);
    }
  }
}
