package dev.kiln.keypoints.train;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Position of a run: the next batch to train, the running loss of the epoch so far, the best
 * validation NME, and the wall time spent. A checkpoint stores it so a resumed run continues at the
 * same batch.
 *
 * @param epoch the epoch to continue, from 1
 * @param batch the batch within that epoch to continue from, from 0
 * @param lossSum sum of the batch losses of the epoch so far
 * @param batches number of batches in {@code lossSum}
 * @param bestNme lowest validation NME so far, or infinity
 * @param elapsedSeconds wall time of the run so far, over all its starts and resumes. It is only
 *     recorded, because the time limit counts each start or resume on its own
 */
public record Position(
    int epoch, int batch, double lossSum, int batches, double bestNme, double elapsedSeconds) {

  /** The position of a new run. */
  public static final Position START = new Position(1, 0, 0, 0, Double.POSITIVE_INFINITY, 0);

  /** Returns the metadata entries that {@link #fromMetadata} reads back. */
  public Map<String, String> toMetadata() {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("epoch", Integer.toString(epoch));
    m.put("batch", Integer.toString(batch));
    m.put("loss_sum", Double.toString(lossSum));
    m.put("loss_batches", Integer.toString(batches));
    m.put("best_nme", Double.toString(bestNme));
    m.put("elapsed_seconds", Double.toString(elapsedSeconds));
    return m;
  }

  /** Reads a position written by {@link #toMetadata}. */
  public static Position fromMetadata(Map<String, String> m) throws IOException {
    try {
      return new Position(
          Integer.parseInt(RunMetadata.require(m, "epoch")),
          Integer.parseInt(RunMetadata.require(m, "batch")),
          Double.parseDouble(RunMetadata.require(m, "loss_sum")),
          Integer.parseInt(RunMetadata.require(m, "loss_batches")),
          Double.parseDouble(RunMetadata.require(m, "best_nme")),
          Double.parseDouble(RunMetadata.require(m, "elapsed_seconds")));
    } catch (NumberFormatException e) {
      throw new IOException("checkpoint position is invalid: " + e.getMessage(), e);
    }
  }
}
