package dev.kiln.keypoints.train;

import java.util.Locale;

/**
 * One row of {@code history.csv}: what an epoch of training measured.
 *
 * @param epoch the epoch number, from 1
 * @param trainLoss mean training loss over the epoch's batches
 * @param validationLoss mean loss on the validation set, in evaluation mode
 * @param validationNme mean normalized error on the validation set (inter-ocular, points 36-45)
 * @param learningRate the learning rate used during the epoch
 * @param seconds wall time of the epoch, training and validation
 * @param imagesPerSecond training images over {@code seconds}, so validation time counts too
 * @param loaderWaitSeconds time the training loop waited for the batch loader
 */
public record EpochRecord(
    int epoch,
    double trainLoss,
    double validationLoss,
    double validationNme,
    double learningRate,
    double seconds,
    double imagesPerSecond,
    double loaderWaitSeconds) {

  /** The CSV header that {@link #toCsv()} rows follow. */
  public static final String HEADER =
      "epoch,train_loss,val_loss,val_nme,lr,seconds,images_per_s,loader_wait_s";

  /** Formats the record as a CSV row. */
  public String toCsv() {
    return String.format(
        Locale.ROOT,
        "%d,%.6g,%.6g,%.6g,%.6g,%.2f,%.2f,%.2f",
        epoch,
        trainLoss,
        validationLoss,
        validationNme,
        learningRate,
        seconds,
        imagesPerSecond,
        loaderWaitSeconds);
  }

  /** Parses a row written by {@link #toCsv()}. */
  public static EpochRecord parse(String line) {
    String[] f = line.split(",");
    if (f.length != 8) {
      throw new IllegalArgumentException(
          "history row '" + line + "' has " + f.length + " columns, expected 8: " + HEADER);
    }
    return new EpochRecord(
        Integer.parseInt(f[0]),
        Double.parseDouble(f[1]),
        Double.parseDouble(f[2]),
        Double.parseDouble(f[3]),
        Double.parseDouble(f[4]),
        Double.parseDouble(f[5]),
        Double.parseDouble(f[6]),
        Double.parseDouble(f[7]));
  }
}
