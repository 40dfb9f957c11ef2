package dev.kiln.keypoints.train;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.io.Safetensors;
import dev.kiln.nn.io.SafetensorsException;
import dev.kiln.nn.optim.Optimizer;
import java.io.IOException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A training checkpoint in one safetensors file: the model's parameters and buffers under {@code
 * model.}, the optimizer's state under {@code optimizer.}, and everything else a run needs to
 * continue (epoch, batch, generator state, model description, keypoint normalization) as string
 * metadata.
 *
 * <p>Files are written to a temporary file and renamed into place, so a crash or Ctrl-C during a
 * save leaves the previous checkpoint intact.
 *
 * @param model the model's state dict, by PyTorch-style name
 * @param optimizer the optimizer's state dict; empty for a file saved without one
 * @param metadata the run's string metadata
 */
public record Checkpoint(
    Map<String, Tensor> model, Map<String, Tensor> optimizer, Map<String, String> metadata) {
  /** Prefix of the model's tensor names in a checkpoint file. */
  public static final String MODEL_PREFIX = "model.";

  private static final String OPTIMIZER_PREFIX = "optimizer.";

  /**
   * Writes the model, the optimizer (may be null) and the metadata to {@code file}, atomically. A
   * symbolic link at {@code file} is replaced, so a run folder whose checkpoints link into another
   * run leaves that run's files as they were.
   */
  public static void save(
      Path file, Module model, Optimizer optimizer, Map<String, String> metadata)
      throws IOException {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    model.stateDict().forEach((name, value) -> tensors.put(MODEL_PREFIX + name, value));
    if (optimizer != null) {
      optimizer.stateDict().forEach((name, value) -> tensors.put(OPTIMIZER_PREFIX + name, value));
    }
    Safetensors.write(file, tensors, metadata, LinkOption.NOFOLLOW_LINKS);
  }

  /**
   * Reads a checkpoint written by {@link #save}, in one pass through one open file, so a checkpoint
   * that a running training replaces meanwhile is read whole in its old version.
   */
  public static Checkpoint read(Path file) throws IOException {
    return read(file, true);
  }

  /**
   * Reads only the model part and the metadata of a checkpoint, as {@link #read} does, and skips
   * the optimizer's state, which is most of an Adam run's file: for prediction.
   */
  public static Checkpoint readModel(Path file) throws IOException {
    return read(file, false);
  }

  private static Checkpoint read(Path file, boolean withOptimizer) throws IOException {
    Safetensors.Contents contents;
    try {
      contents =
          Safetensors.readAll(
              file,
              name ->
                  name.startsWith(MODEL_PREFIX)
                      || (withOptimizer && name.startsWith(OPTIMIZER_PREFIX)));
    } catch (SafetensorsException e) {
      throw new SafetensorsException(
          e.file(),
          e.problem()
              + ". If this is a kiln checkpoint, it is damaged and cannot be repaired: copy it again"
              + " if it was copied, else use the run's other checkpoint (best.safetensors or"
              + " last.safetensors) where the command takes a file",
          e);
    }
    Map<String, Tensor> model = new LinkedHashMap<>();
    Map<String, Tensor> optimizer = new LinkedHashMap<>();
    contents
        .tensors()
        .forEach(
            (name, tensor) -> {
              if (name.startsWith(MODEL_PREFIX)) {
                model.put(name.substring(MODEL_PREFIX.length()), tensor);
              } else {
                optimizer.put(name.substring(OPTIMIZER_PREFIX.length()), tensor);
              }
            });
    if (model.isEmpty()) {
      throw new IOException(
          file
              + " holds no tensors named 'model.*', so it is not a kiln checkpoint; pass a"
              + " best.safetensors or last.safetensors file from a training run folder");
    }
    return new Checkpoint(model, optimizer, contents.metadata());
  }

  /** Loads the model part into {@code target}, which must have the same architecture. */
  public void loadModel(Module target) {
    target.loadStateDict(model, true);
  }

  /** Loads the optimizer part into {@code target}. */
  public void loadOptimizer(Optimizer target) {
    target.loadStateDict(optimizer);
  }
}
