package dev.kiln.nn.io;

import dev.kiln.nn.Module;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
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
   * otherwise the names that did not match are logged as a warning. Only the tensors that the model
   * has are decoded, so an extra tensor in a dtype kiln does not read (such as an int64 {@code
   * position_ids}) fails a strict load as unexpected and is skipped by a non-strict one. PyTorch's
   * batch norm counters ({@code num_batches_tracked}, or a name ending in {@code
   * .num_batches_tracked}) are skipped unless the model has a tensor of that name. Returns the
   * file's metadata.
   *
   * @throws IOException if the file cannot be read, is not valid safetensors, or does not match the
   *     model; the message names the file, and the model is unchanged in that case
   */
  public static Map<String, String> load(Module model, Path file, boolean strict)
      throws IOException {
    Set<String> own = model.stateDict().keySet();
    // Decodes only the model's tensors, so that a tensor the model does not use can be in any
    // dtype, and reads them through one open file (see Safetensors.readAll).
    Safetensors.Contents contents = Safetensors.readAll(file, own::contains);

    Set<String> unexpected = new TreeSet<>();
    for (String name : contents.names()) {
      if (!own.contains(name) && !isBatchCounter(name)) {
        unexpected.add(name);
      }
    }
    Set<String> missing = new TreeSet<>(own);
    missing.removeAll(contents.tensors().keySet());
    if (strict && (!missing.isEmpty() || !unexpected.isEmpty())) {
      throw new IOException(
          "cannot load "
              + file
              + " into the model: "
              + describeMismatch(missing, unexpected)
              + ". Check that the weights were saved from the same architecture, or load with"
              + " strict=false");
    }

    try {
      model.loadStateDict(contents.tensors(), false);
    } catch (IllegalArgumentException e) {
      throw new IOException("cannot load " + file + " into the model: " + e.getMessage(), e);
    }
    if (!missing.isEmpty() || !unexpected.isEmpty()) {
      LOG.warn(
          "loaded {} partially: {}. The model's missing tensors keep their values, and the"
              + " unexpected ones were skipped",
          file,
          describeMismatch(missing, unexpected));
    }
    return contents.metadata();
  }

  /** Returns "missing tensors [...], unexpected tensors [...]", leaving out an empty list. */
  private static String describeMismatch(Set<String> missing, Set<String> unexpected) {
    List<String> parts = new ArrayList<>();
    if (!missing.isEmpty()) {
      parts.add("missing tensors " + missing);
    }
    if (!unexpected.isEmpty()) {
      parts.add("unexpected tensors " + unexpected);
    }
    return String.join(", ", parts);
  }

  /**
   * Returns whether {@code name} is PyTorch's batch norm counter, an int64 buffer that kiln's batch
   * norm does not keep.
   */
  private static boolean isBatchCounter(String name) {
    return name.equals(BATCH_COUNTER) || name.endsWith("." + BATCH_COUNTER);
  }
}
