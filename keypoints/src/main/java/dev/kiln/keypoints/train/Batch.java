package dev.kiln.keypoints.train;

import dev.kiln.core.tensor.Tensor;
import java.util.List;

/**
 * A batch ready for the model.
 *
 * @param images float32 [N, 1, S, S]
 * @param targets float32 [N, 136], keypoints normalized to the crop
 * @param names the image file names, for messages and per-face reports
 */
public record Batch(Tensor images, Tensor targets, List<String> names) {

  /** Number of faces in the batch. */
  public int size() {
    return names.size();
  }
}
