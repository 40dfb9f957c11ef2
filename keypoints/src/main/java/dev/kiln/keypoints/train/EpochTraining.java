package dev.kiln.keypoints.train;

/**
 * The training part of one epoch, before validation.
 *
 * @param lossSum the sum of the batch losses, including batches from before a resume
 * @param batches the number of batches in {@code lossSum}
 * @param images the images trained on in this invocation
 * @param waitNanos the time spent waiting for the loader
 * @param nextBatch the index of the first batch not trained
 * @param timeUp whether the time limit was reached
 * @param timeUpInsideEpoch whether the limit was reached with batches of the epoch left
 * @param stopRequested whether {@link Trainer#requestStop()} ended the epoch
 */
record EpochTraining(
    double lossSum,
    int batches,
    int images,
    long waitNanos,
    int nextBatch,
    boolean timeUp,
    boolean timeUpInsideEpoch,
    boolean stopRequested) {

  /** Whether the epoch must be saved as a position instead of validated and recorded. */
  boolean interrupted() {
    return stopRequested || timeUpInsideEpoch;
  }
}
