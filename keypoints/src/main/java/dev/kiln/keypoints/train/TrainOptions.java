package dev.kiln.keypoints.train;

import dev.kiln.keypoints.io.AtomicFiles;
import dev.kiln.keypoints.io.TextFiles;
import dev.kiln.nn.loss.Losses;
import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.Properties;

/**
 * The settings of a training run. They are written to {@code options.properties} in the run folder,
 * so that {@code --resume} continues with exactly the same settings.
 *
 * @param data folder with {@code training_frames_keypoints.csv} and {@code training/}
 * @param model preset name or model file
 * @param epochs number of epochs
 * @param batchSize images per batch
 * @param optimizer adam, adamw or sgd
 * @param learningRate the initial learning rate
 * @param weightDecay weight decay (L2 for adam and sgd, decoupled for adamw)
 * @param loss mse, l1, smoothl1 or wing
 * @param schedule cosine, step, plateau or none
 * @param seed seed of the split, the initial weights, the batch order and the augmentation
 * @param validationFraction share of the faces held out for validation, taken as whole identities,
 *     so it is met to within one identity's faces
 * @param loaderThreads background threads that prepare batches, or 0 to prepare them on the
 *     training thread
 * @param limit maximum number of CSV rows to read (for quick runs), or 0 for all
 * @param timeLimitMinutes stop training after this many minutes of wall time in each invocation, or
 *     0 for none
 * @param skipBadRows skip bad dataset rows with a report, instead of stopping at the first
 */
public record TrainOptions(
    Path data,
    String model,
    int epochs,
    int batchSize,
    String optimizer,
    double learningRate,
    double weightDecay,
    String loss,
    String schedule,
    long seed,
    double validationFraction,
    int loaderThreads,
    int limit,
    double timeLimitMinutes,
    boolean skipBadRows) {

  /** Name of the file that stores the options in a run folder. */
  public static final String FILE_NAME = "options.properties";

  /**
   * Maximum of {@link #loaderThreads}. More threads than processor cores prepare batches no faster,
   * and the loader keeps two batches per thread in memory. So the bound only stops values that
   * could never help on any machine, and the train command warns from the machine's core count on.
   */
  public static final int MAX_LOADER_THREADS = 1024;

  /**
   * Rejects every invalid value, naming its command-line option, so that the train command fails
   * before it reads a file or creates a folder.
   */
  public TrainOptions {
    requireValidEpochs(epochs);
    requireAtLeast("--batch-size", batchSize, 1);
    if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
      throw new IllegalArgumentException("--lr must be a positive number, got " + learningRate);
    }
    if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
      throw new IllegalArgumentException(
          "--weight-decay must be a finite number, 0 or more, got " + weightDecay);
    }
    if (!(validationFraction > 0 && validationFraction < 1)) {
      throw new IllegalArgumentException(
          "--val-fraction must be above 0 and below 1, got " + validationFraction);
    }
    if (loaderThreads < 0 || loaderThreads > MAX_LOADER_THREADS) {
      throw new IllegalArgumentException(
          "--loader-threads must be from 0 to "
              + MAX_LOADER_THREADS
              + " (0 prepares each batch on the training thread), got "
              + loaderThreads);
    }
    if (limit < 0) {
      throw new IllegalArgumentException(
          "--limit must be 0 (all rows) or at least 1 row, got " + limit);
    }
    requireValidTimeLimit(timeLimitMinutes);
    TrainingSetup.requireOptimizerName(optimizer);
    Losses.parse(loss);
    TrainingSetup.requireScheduleName(schedule);
    // -0.0 passes the checks above, because -0.0 >= 0 is true. Adding 0.0 turns it into 0.0, so
    // that options.properties and the messages never show "-0.0".
    weightDecay += 0.0;
    timeLimitMinutes += 0.0;
  }

  /** Rejects an epoch count below 1, which a new run or a resume may be given. */
  private static void requireValidEpochs(int epochs) {
    requireAtLeast("--epochs", epochs, 1);
  }

  /** Rejects a time limit that is negative, NaN or infinite, which a resume may be given too. */
  private static void requireValidTimeLimit(double minutes) {
    if (!(minutes >= 0) || !Double.isFinite(minutes)) {
      throw new IllegalArgumentException(
          "--time-limit must be 0 (no limit) or a positive number of minutes, got " + minutes);
    }
  }

  private static void requireAtLeast(String option, int value, int minimum) {
    if (value < minimum) {
      throw new IllegalArgumentException(
          option + " must be at least " + minimum + ", got " + value);
    }
  }

  /**
   * Writes the options to {@code folder/options.properties} atomically, so that a failed write
   * leaves the previous file as it was.
   */
  public void write(Path folder) throws IOException {
    Properties p = new Properties();
    p.setProperty("data", data.toString());
    p.setProperty("model", model);
    p.setProperty("epochs", Integer.toString(epochs));
    p.setProperty("batch_size", Integer.toString(batchSize));
    p.setProperty("optimizer", optimizer);
    p.setProperty("lr", Double.toString(learningRate));
    p.setProperty("weight_decay", Double.toString(weightDecay));
    p.setProperty("loss", loss);
    p.setProperty("schedule", schedule);
    p.setProperty("seed", Long.toString(seed));
    p.setProperty("validation_fraction", Double.toString(validationFraction));
    p.setProperty("loader_threads", Integer.toString(loaderThreads));
    p.setProperty("limit", Integer.toString(limit));
    p.setProperty("time_limit_minutes", Double.toString(timeLimitMinutes));
    p.setProperty("skip_bad_rows", Boolean.toString(skipBadRows));
    StringWriter text = new StringWriter();
    p.store(text, "kiln training options");
    AtomicFiles.writeString(folder.resolve(FILE_NAME), text.toString());
  }

  /** Reads the options of a run folder. */
  public static TrainOptions read(Path folder) throws IOException {
    return read(folder, OptionalInt.empty(), OptionalDouble.empty());
  }

  /**
   * Reads the options from {@code folder}, with a present {@code epochs} or {@code
   * timeLimitMinutes} in place of the saved value, before the values are checked. So a resume can
   * replace a saved value that this version rejects, such as a negative time limit that an older
   * version saved unchecked.
   *
   * @throws IllegalArgumentException if a given replacement is invalid, naming its option
   * @throws IOException if the file cannot be read or holds an invalid value
   */
  public static TrainOptions read(Path folder, OptionalInt epochs, OptionalDouble timeLimitMinutes)
      throws IOException {
    // Checked apart from the file's values, so that the message blames the command line.
    epochs.ifPresent(TrainOptions::requireValidEpochs);
    timeLimitMinutes.ifPresent(TrainOptions::requireValidTimeLimit);
    Path file = folder.resolve(FILE_NAME);
    Properties p = new Properties();
    try (Reader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(in);
    } catch (CharacterCodingException e) {
      throw TextFiles.notUtf8(file, "the run's options file", e);
    }
    epochs.ifPresent(value -> p.setProperty("epochs", Integer.toString(value)));
    timeLimitMinutes.ifPresent(
        value -> p.setProperty("time_limit_minutes", Double.toString(value)));
    try {
      return new TrainOptions(
          Path.of(value(p, file, "data")),
          value(p, file, "model"),
          Integer.parseInt(value(p, file, "epochs")),
          Integer.parseInt(value(p, file, "batch_size")),
          value(p, file, "optimizer"),
          Double.parseDouble(value(p, file, "lr")),
          Double.parseDouble(value(p, file, "weight_decay")),
          value(p, file, "loss"),
          value(p, file, "schedule"),
          Long.parseLong(value(p, file, "seed")),
          Double.parseDouble(value(p, file, "validation_fraction")),
          Integer.parseInt(value(p, file, "loader_threads")),
          Integer.parseInt(value(p, file, "limit")),
          Double.parseDouble(value(p, file, "time_limit_minutes")),
          Boolean.parseBoolean(value(p, file, "skip_bad_rows")));
    } catch (IllegalArgumentException e) {
      throw new IOException(
          file
              + " is invalid: "
              + e.getMessage()
              + ". Set a valid value in that file; a run saved by an older kiln may hold a value"
              + " that this version rejects",
          e);
    }
  }

  private static String value(Properties p, Path file, String key) throws IOException {
    String value = p.getProperty(key);
    if (value == null) {
      throw new IOException(file + " has no '" + key + "'; the run folder may be damaged");
    }
    return value;
  }
}
