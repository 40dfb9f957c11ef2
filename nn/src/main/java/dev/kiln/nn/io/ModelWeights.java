package dev.kiln.nn.io;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Saves and loads the weights of a module tree as safetensors files, under PyTorch's state-dict
 * names ({@code features.0.weight}, {@code bn1.running_var}), so that files move both ways between
 * kiln and PyTorch.
 */
public final class ModelWeights {
  private static final Logger LOG = LoggerFactory.getLogger(ModelWeights.class);
  private static final String BATCH_COUNTER = "num_batches_tracked";

  private ModelWeights() {}

  /**
   * Writes every parameter and buffer of {@code model}, in their own dtypes, with {@code metadata}
   * in the header. The write is atomic: a failure leaves any earlier file in place.
   */
  public static void save(Module model, Path file, Map<String, String> metadata)
      throws IOException {
    Safetensors.write(file, model.stateDict(), metadata);
  }

  /**
   * Reads a file written by {@link #save} (or by PyTorch's safetensors) into {@code model},
   * converting dtypes where they differ. With {@code strict}, the names must match both ways;
   * otherwise the names that did not match are logged as a warning. PyTorch's {@code
   * num_batches_tracked} entries are skipped. Returns the file's metadata.
   *
   * @throws IOException if the file cannot be read, is not valid safetensors, or does not match the
   *     model; the message names the file, and the model is unchanged in that case
   */
  public static Map<String, String> load(Module model, Path file, boolean strict)
      throws IOException {
    SafetensorsFile contents = Safetensors.read(file);
    Map<String, Tensor> state = new LinkedHashMap<>();
    for (String name : contents.names()) {
      // PyTorch's batch norm counts its batches in an int64 buffer that kiln has no use for.
      if (!name.endsWith(BATCH_COUNTER)) {
        state.put(name, contents.tensor(name));
      }
    }
    Module.LoadResult result;
    try {
      result = model.loadStateDict(state, strict);
    } catch (IllegalArgumentException e) {
      throw new IOException("cannot load " + file + " into the model: " + e.getMessage(), e);
    }
    if (!result.missing().isEmpty() || !result.unexpected().isEmpty()) {
      LOG.warn(
          "loaded {} partially: the model's {} were not in the file, and the file's {} are not"
              + " in the model",
          file,
          result.missing(),
          result.unexpected());
    }
    return contents.metadata();
  }
}
