package dev.kiln.nn.io;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Saves and loads the weights of a module tree as safetensors files, under PyTorch's state-dict
 * names ({@code features.0.weight}, {@code bn1.running_var}), so that files move both ways between
 * kiln and PyTorch.
 */
public final class ModelWeights {
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
   * converting dtypes where they differ. With {@code strict}, the names must match both ways.
   * Returns the file's metadata.
   *
   * @throws IOException if the file cannot be read, is not valid safetensors, or does not match the
   *     model; the message names the file, and the model is unchanged in that case
   */
  public static Map<String, String> load(Module model, Path file, boolean strict)
      throws IOException {
    SafetensorsFile contents = Safetensors.read(file);
    Map<String, Tensor> state = new LinkedHashMap<>();
    for (String name : contents.names()) {
      state.put(name, contents.tensor(name));
    }
    try {
      model.loadStateDict(state, strict);
    } catch (IllegalArgumentException e) {
      throw new IOException("cannot load " + file + " into the model: " + e.getMessage(), e);
    }
    return contents.metadata();
  }
}
