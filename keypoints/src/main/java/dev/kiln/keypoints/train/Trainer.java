package dev.kiln.keypoints.train;

import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.doctor.Deadline;
import dev.kiln.keypoints.doctor.Doctor;
import dev.kiln.keypoints.doctor.DoctorInput;
import dev.kiln.keypoints.doctor.Report;
import dev.kiln.keypoints.io.AtomicFiles;
import dev.kiln.keypoints.io.Folders;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.plot.TrainingCurves;
import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigDecimal;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Trains a keypoint model and keeps its run folder: the options, the identity split, the model
 * description, {@code history.csv}, {@code curves.png}, and the {@code best} and {@code last}
 * checkpoints.
 *
 * <p>A run stops at the end of its epochs, at its time limit, or when {@link #requestStop()} is
 * called (the command line calls it on Ctrl-C). In each case {@code last.safetensors} records the
 * exact position, so that {@link #resume} continues the same run, batch for batch. The one
 * exception is cuDNN's dropout on a GPU, whose random state starts afresh in each process.
 *
 * <p>The model is built and initialized on the CPU, so a seed gives the same initial weights on
 * every device. It then moves to the run's device before the optimizer is built, and each batch is
 * copied there when it is used. The device is not one of the run's options, so a run may be resumed
 * on another device. Its numbers then differ in the last bits from those of a run that stayed on
 * one device.
 *
 * <p>NOTE: the device path has run only on {@code emulated}, in tests, and no run on a real GPU has
 * been checked yet.
 */
public final class Trainer {
  private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);

  /** Checkpoint of the most recent position. */
  public static final String LAST = "last.safetensors";

  /** Checkpoint of the epoch with the lowest validation NME. */
  public static final String BEST = "best.safetensors";

  /** Name of the plot of the losses and NME over the epochs. */
  static final String CURVES_FILE = "curves.png";

  /** The files that a new run may have written when it fails before its first checkpoint. */
  private static final List<String> FILES_BEFORE_CHECKPOINT =
      List.of(
          TrainOptions.FILE_NAME,
          TrainingParts.MODEL_FILE,
          TrainingData.SPLIT_FILE,
          TrainingParts.DEVICES_FILE,
          TrainingParts.HISTORY_FILE,
          CURVES_FILE,
          LAST,
          FolderClaim.FILE_NAME,
          FolderClaim.OLD_FILE_NAME);

  private final TrainOptions options;
  private final Path run;
  private final boolean resuming;

  /**
   * Whether the resume was given an epoch count or a time limit, which {@link #run} then saves into
   * {@code options.properties}.
   */
  private final boolean optionsChanged;

  /**
   * The folders that {@link #start} created: the run folder first, then each parent that was
   * missing, such as {@code runs/}. A new run that fails before its first checkpoint removes them
   * where they hold nothing else. The list is empty where the run folder existed.
   */
  private final List<Path> createdFolders;

  private final Device device;
  private final PrintWriter out;

  /**
   * Whether drawing {@code curves.png} has failed once in this run, so that its warning is printed
   * only once.
   */
  private boolean curvesFailed;

  /** The run's claim on its folder, until {@link #run} ends, and null after. */
  private FolderClaim claim;

  /** Whether a new run has printed its folder, which it then reports removing on a failure. */
  private boolean folderAnnounced;

  private final ProgressBar progress;
  private volatile boolean stopRequested;

  /** The examination of a stalled run: {@link Doctor#examine}, or a stand-in that a test sets. */
  private Function<DoctorInput, Report> doctor = Doctor::examine;

  /**
   * The constant shapes of the training targets that this process has trained on, for the stall
   * rule.
   */
  private final ConstantShapes trainedShapes = new ConstantShapes();

  private Trainer(
      TrainOptions options,
      Path run,
      boolean resuming,
      boolean optionsChanged,
      List<Path> createdFolders,
      FolderClaim claim,
      Device device,
      PrintWriter out,
      boolean interactive) {
    this.options = options;
    this.run = run;
    this.resuming = resuming;
    this.optionsChanged = optionsChanged;
    this.createdFolders = createdFolders;
    this.claim = claim;
    this.device = device;
    this.out = out;
    this.progress = new ProgressBar(out, interactive);
  }

  /**
   * Prepares a new run in {@code run}, which must not exist or be empty, that trains on {@code
   * device}. It creates the folder and claims it ({@link FolderClaim}), which keeps other runs and
   * resumes out of the folder. {@link #run} writes the run's other files once the data and the
   * model have loaded, and releases the claim when the run ends.
   *
   * @throws IOException if another run has claimed the folder, or the folder is not empty
   */
  public static Trainer start(
      TrainOptions options, Device device, Path run, PrintWriter out, boolean interactive)
      throws IOException {
    requireEmpty(run);
    TrainingData.requireDataset(options.data());
    // A model that does not parse, or that the keypoint tools cannot feed, fails here, before the
    // run folder exists.
    ModelChecks.requireGrayKeypointInput(ModelPresets.resolve(options.model()));
    List<Path> missing = Folders.missingFolders(run.toAbsolutePath());
    Files.createDirectories(run);
    FolderClaim claim = FolderClaim.take(run, FolderClaim.Purpose.START);
    return new Trainer(
        options, run, false, false, List.copyOf(missing), claim, device, out, interactive);
  }

  /**
   * Rejects a run folder that a live run has claimed, and then one with anything in it but stale
   * claim files. It advises --resume only where the folder has a checkpoint to resume from.
   */
  private static void requireEmpty(Path run) throws IOException {
    if (!Files.isDirectory(run)) {
      return;
    }
    // First, so that a live run is reported as such, and not as files to delete or resume.
    FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.START);
    try (var entries = Files.list(run)) {
      if (entries.allMatch(p -> FolderClaim.isClaimFile(p.getFileName().toString()))) {
        return;
      }
    }
    if (Files.exists(run.resolve(LAST))) {
      throw new IOException(
          "output folder "
              + run
              + " is not empty: pass another --output, or --resume "
              + run
              + " to continue that run");
    }
    throw new IOException(
        "output folder "
            + run
            + " is not empty and contains no "
            + LAST
            + ", so there is no finished epoch to resume: delete the folder if nothing in it is"
            + " needed, or pass another --output");
  }

  /**
   * Deletes the files that a failed new run wrote into its folder before its first checkpoint, and
   * their temporary files. It then deletes the folder where {@link #start} created it and nothing
   * else is in it, and each parent that {@link #start} created and that is still empty. Anything
   * else, such as a file the user put there during the run, stays with its folder. The run's claim
   * file goes last, just before the folder, so that no other run can claim the folder while the
   * files are deleted. Returns what it did, for the message, or null where a deletion failed, after
   * printing why.
   */
  private String removeFailedStart() {
    try {
      List<String> notWritten = new ArrayList<>();
      try (var children = Files.list(run)) {
        for (Path child : children.toList()) {
          String name = child.getFileName().toString();
          if (name.equals(FolderClaim.FILE_NAME)) {
            continue;
          }
          if (writtenBeforeCheckpoint(name)
              && !Files.isDirectory(child, LinkOption.NOFOLLOW_LINKS)) {
            Files.deleteIfExists(child);
          } else {
            notWritten.add(name);
          }
        }
      }
      if (!notWritten.isEmpty()) {
        return "emptied "
            + run
            + " of the run's files but kept it for what the run did not write: "
            + String.join(", ", notWritten);
      }
      releaseClaim();
      if (createdFolders.isEmpty()) {
        return "emptied " + run;
      }
      Files.delete(run);
      for (Path parent : createdFolders.subList(1, createdFolders.size())) {
        // A parent that another run has written into since, such as runs/, stays.
        if (!isEmptyFolder(parent)) {
          break;
        }
        Files.delete(parent);
      }
      return "removed " + run;
    } catch (IOException e) {
      out.println("could not remove the run folder of a failed start, " + run + ": " + e);
      return null;
    }
  }

  /**
   * Tests whether {@code name} is a file that a new run writes before its first checkpoint, or the
   * temporary file that {@link AtomicFiles} writes first, named {@code .NAME.<digits>.tmp} (any
   * name of the form {@code .NAME.*.tmp} counts).
   */
  static boolean writtenBeforeCheckpoint(String name) {
    for (String file : FILES_BEFORE_CHECKPOINT) {
      if (name.equals(file) || (name.startsWith("." + file + ".") && name.endsWith(".tmp"))) {
        return true;
      }
    }
    return false;
  }

  private static boolean isEmptyFolder(Path folder) throws IOException {
    try (var entries = Files.list(folder)) {
      return entries.findAny().isEmpty();
    }
  }

  /**
   * Continues the run in {@code run} from its last checkpoint on {@code device}, with the time
   * limit that the run has. A positive {@code epochs} replaces the run's epoch count.
   */
  public static Trainer resume(
      Path run, int epochs, Device device, PrintWriter out, boolean interactive)
      throws IOException {
    OptionalInt newEpochs = epochs > 0 ? OptionalInt.of(epochs) : OptionalInt.empty();
    return resume(run, newEpochs, OptionalDouble.empty(), device, out, interactive);
  }

  /**
   * Continues the run in {@code run} from its last checkpoint on {@code device}. A present {@code
   * epochs} replaces the run's epoch count, and a present {@code timeLimitMinutes} replaces its
   * time limit, from this invocation on. Neither changes what an epoch computes. It claims the
   * folder ({@link FolderClaim}) until {@link #run} ends, so that no other run trains in it
   * meanwhile.
   *
   * @throws IOException if another run has claimed the folder, or it has no checkpoint
   * @throws IllegalArgumentException if a given replacement is invalid, such as 0 epochs
   */
  public static Trainer resume(
      Path run,
      OptionalInt epochs,
      OptionalDouble timeLimitMinutes,
      Device device,
      PrintWriter out,
      boolean interactive)
      throws IOException {
    if (!Files.isDirectory(run)) {
      throw new FileSystemException(
          run.toString(),
          null,
          (Files.exists(run) ? "is not a folder" : "run folder not found")
              + ": pass --resume the folder of a kiln train run, such as runs/<date>-<time>");
    }
    if (!Files.exists(run.resolve(LAST))) {
      // A new run that has not saved its first checkpoint yet is reported as running.
      FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.RESUME);
      throw new IOException(
          run + " has no " + LAST + " to resume from: it is not a run folder, or no epoch ended");
    }
    FolderClaim claim = FolderClaim.take(run, FolderClaim.Purpose.RESUME);
    try {
      TrainOptions options = TrainOptions.read(run, epochs, timeLimitMinutes);
      // Checked before anything in the folder changes, which happens only in run(), so a rejected
      // resume leaves the run as it was.
      Checkpoint last = Checkpoint.read(run.resolve(LAST));
      ModelChecks.requireRunModel(run, options, last);
      Position position = Position.fromMetadata(last.metadata());
      if (position.epoch() > options.epochs()) {
        throw new IllegalArgumentException(
            run
                + " has finished "
                + (position.epoch() - 1)
                + " epochs, so a run of "
                + options.epochs()
                + " leaves nothing to train: resume with --epochs greater than "
                + (position.epoch() - 1));
      }
      boolean optionsChanged = epochs.isPresent() || timeLimitMinutes.isPresent();
      return new Trainer(
          options, run, true, optionsChanged, List.of(), claim, device, out, interactive);
    } catch (IOException | RuntimeException | Error e) {
      try {
        claim.close();
      } catch (IOException closing) {
        e.addSuppressed(closing);
      }
      throw e;
    }
  }

  /** Asks the run to save its position and stop after the current batch; safe from any thread. */
  public void requestStop() {
    stopRequested = true;
  }

  /** Replaces the doctor that examines a stalled run, so that a test can make it fail. */
  Trainer withDoctor(Function<DoctorInput, Report> doctor) {
    this.doctor = doctor;
    return this;
  }

  /**
   * Runs training and returns the history of all epochs of the run.
   *
   * <p>A new run that fails before it has saved {@code last.safetensors}, for any reason, running
   * out of memory included, removes what it wrote, so that the next attempt with the same --output
   * is not rejected as "not empty". A run with a checkpoint, new or resumed, is never removed.
   *
   * <p>However the run ends, by its epochs, its time limit, {@link #requestStop()} or a failure, it
   * releases its claim on the folder before it returns.
   */
  public List<EpochRecord> run() throws IOException {
    try {
      return resuming ? trainResumedRun() : trainOrRemoveNewRun();
    } finally {
      releaseClaim();
    }
  }

  /** Restores a resumed run from its checkpoint and trains it to its end. */
  private List<EpochRecord> trainResumedRun() throws IOException {
    TrainingParts parts = TrainingParts.prepare(options, run, device, true, out);
    Position position = restore(parts);
    // A resume changes the run folder only from here on, after the data, the split, the history
    // and the checkpoint's state have loaded, so that a resume that fails leaves every file as it
    // was.
    parts.recordStart(run, device);
    if (optionsChanged) {
      options.write(run);
    }
    return train(parts, position);
  }

  /** Trains a new run, and removes what it wrote where it fails before its first checkpoint. */
  private List<EpochRecord> trainOrRemoveNewRun() throws IOException {
    try {
      // In a method of its own, so that the model and the data are garbage once it has thrown, and
      // the removal below has memory to run after an OutOfMemoryError.
      return trainNewRun();
    } catch (IOException | RuntimeException | Error e) {
      // The folder was empty or missing at start(), so until a checkpoint exists the run files in
      // it are this failed run's.
      if (!Files.exists(run.resolve(LAST), LinkOption.NOFOLLOW_LINKS)) {
        String removal = removeFailedStart();
        if (removal != null && folderAnnounced) {
          out.println(removal + ", because the run failed before it saved a checkpoint");
        }
      }
      throw e;
    }
  }

  /**
   * Deletes the claim file, if this run still holds it, and releases its lock. A failure is only
   * printed, because the run's files are safe either way, and a claim file left behind without its
   * lock is taken over by the next start or resume.
   */
  private void releaseClaim() {
    if (claim == null) {
      return;
    }
    FolderClaim released = claim;
    claim = null;
    try {
      released.close();
    } catch (IOException e) {
      out.println("could not remove the claim file in " + run + ": " + e);
    }
  }

  /**
   * Loads the data and builds the model of a new run, and only then writes the run's first files
   * and prints the run folder, so that a run whose data fails to load has printed no folder.
   */
  private List<EpochRecord> trainNewRun() throws IOException {
    TrainingParts parts = TrainingParts.prepare(options, run, device, false, out);
    options.write(run);
    parts.recordStart(run, device);
    out.println("run folder: " + run);
    folderAnnounced = true;
    return train(parts, Position.START);
  }

  /** Trains from {@code position} to the end of the run, its time limit or a stop request. */
  private List<EpochRecord> train(TrainingParts parts, Position position) throws IOException {
    long started = System.nanoTime() - (long) (position.elapsedSeconds() * 1e9);
    // The time limit counts this invocation only, so a resumed run gets the whole limit again.
    Deadline timeLimit = timeLimit();
    // One examination per run: a resumed run that found doctor.md from an earlier start keeps it.
    boolean doctorRan = Files.exists(run.resolve(Report.FILE_NAME));

    for (int epoch = position.epoch(); epoch <= options.epochs(); epoch++) {
      long epochStart = System.nanoTime();
      EpochTraining training = trainEpoch(parts, epoch, position, epochStart, timeLimit);
      if (training.interrupted()) {
        // A time limit that strikes inside an epoch stops as Ctrl-C does, so that a resumed run
        // trains the rest of the epoch before it validates and records the epoch.
        if (training.timeUpInsideEpoch()) {
          printTimeLimitReached();
        }
        Position stop =
            new Position(
                epoch,
                training.nextBatch(),
                training.lossSum(),
                training.batches(),
                position.bestNme(),
                elapsedSeconds(started));
        saveLast(parts, stop);
        out.println(
            "stopped at epoch "
                + epoch
                + ", batch "
                + training.nextBatch()
                + "; saved "
                + run.resolve(LAST)
                + ". Continue with --resume "
                + run);
        return parts.history().records();
      }

      Validation validation = finishEpoch(parts, epoch, training, epochStart);
      double nme = validation.nme();
      parts.schedule().afterEpoch(nme);
      double best = Math.min(position.bestNme(), nme);
      position = new Position(epoch + 1, 0, 0, 0, best, elapsedSeconds(started));
      saveLast(parts, position);
      if (nme <= best) {
        AtomicFiles.copy(run.resolve(LAST), run.resolve(BEST));
      }

      // After the checkpoints, so that a doctor that fails costs no finished epoch. Not when the
      // time limit has passed, during training or validation, because the next start of the run
      // examines it then. Otherwise only until the limit: the examination then stops after the
      // training step or the check that is running, and the run stops with it.
      boolean timeUp = training.timeUp() || passed(timeLimit);
      int stepsPerEpoch = BatchLoader.batchCount(parts.trainingFaces().size(), options.batchSize());
      LOG.info(
          "epoch {}: validation loss {}, loss of the mean training shape {}, of the median one {}",
          epoch,
          validation.loss(),
          validation.meanShapeLoss(),
          validation.medianShapeLoss());
      Optional<String> stalled =
          Doctor.stallReason(
              parts.history().records(), validation.constantShapeLoss(), stepsPerEpoch);
      if (!doctorRan && !timeUp && stalled.isPresent()) {
        doctorRan = true;
        new StallExamination(options, run, device, out, doctor)
            .examine(parts, epoch, stalled.get(), timeLimit);
        timeUp = passed(timeLimit);
      }
      if (timeUp) {
        printTimeLimitReached();
        break;
      }
    }
    return parts.history().records();
  }

  /**
   * Trains the batches of one epoch from {@code position}'s batch on, until the epoch ends, the
   * time limit strikes or {@link #requestStop()} is called.
   */
  private EpochTraining trainEpoch(
      TrainingParts parts, int epoch, Position position, long epochStart, Deadline timeLimit) {
    // Training mode turns dropout on and makes batch norm use, and update, the batch statistics.
    parts.model().train();
    double lossSum = position.lossSum();
    int batches = position.batches();
    int images = 0;
    boolean timeUp = false;
    boolean stopping = false;
    try (BatchLoader loader =
        new BatchLoader(
            parts.trainingFaces(),
            parts.trainPipeline(),
            parts.collate(),
            options.batchSize(),
            true,
            options.seed(),
            epoch,
            options.loaderThreads(),
            position.batch())) {
      while (loader.hasNext() && !stopping && !timeUp) {
        Batch batch = loader.next();
        double item = trainStep(parts, batch);
        trainedShapes.add(batch);
        if (!Double.isFinite(item)) {
          throw new IllegalStateException(
              "the training loss became " + item + " at epoch " + epoch + ": lower --lr");
        }
        lossSum += item;
        batches++;
        images += batch.size();
        double seconds = (System.nanoTime() - epochStart) / 1e9;
        double rate = images / seconds;
        int left = loader.batchCount() - loader.nextIndex();
        progress.update(
            String.format(Locale.ROOT, "epoch %d/%d", epoch, options.epochs()),
            loader.nextIndex(),
            loader.batchCount(),
            rate,
            lossSum / batches,
            left * options.batchSize() / rate);
        timeUp = passed(timeLimit);
        stopping = stopRequested;
      }
      progress.finish();
      return new EpochTraining(
          lossSum,
          batches,
          images,
          loader.waitNanos(),
          loader.nextIndex(),
          timeUp,
          timeUp && loader.hasNext(),
          stopping);
    }
  }

  /** Runs one optimizer step on a batch and returns its loss. */
  private double trainStep(TrainingParts parts, Batch batch) {
    // Every device block or CPU array that the step allocates is released when the scope closes,
    // so the next step reuses it instead of requesting more from the device or the heap.
    try (var _ = MemoryScope.open()) {
      parts.optimizer().zeroGrad();
      Tensor inputs = batch.images().to(device);
      Tensor targets = batch.targets().to(device);
      Tensor value = parts.loss().compute(parts.model().forward(inputs), targets);
      value.backward();
      parts.optimizer().step();
      // On a device, item() waits for the step's kernels, so this is the one sync per step.
      return value.item();
    }
  }

  /**
   * Validates the model after an epoch's training, records the epoch in {@code history.csv},
   * redraws the curves, prints the epoch's line, and returns the validation result.
   */
  private Validation finishEpoch(
      TrainingParts parts, int epoch, EpochTraining training, long epochStart) throws IOException {
    Validation result =
        Validation.run(
            parts.model(),
            parts.validationFaces(),
            parts.evaluationPipeline(),
            parts.collate(),
            parts.loss(),
            parts.normalization(),
            options.batchSize(),
            options.loaderThreads(),
            trainedShapes);
    double seconds = (System.nanoTime() - epochStart) / 1e9;
    EpochRecord record =
        new EpochRecord(
            epoch,
            training.lossSum() / Math.max(1, training.batches()),
            result.loss(),
            result.nme(),
            parts.optimizer().learningRate(),
            seconds,
            training.images() / Math.max(1e-9, seconds),
            training.waitNanos() / 1e9);
    parts.history().add(record);
    drawCurves();
    out.printf(
        Locale.ROOT,
        "epoch %d/%d: train loss %.5f, val loss %.5f, val NME %.2f%%, lr %.2g, %.0f s,"
            + " %s, loader wait %.1f s%n",
        epoch,
        options.epochs(),
        record.trainLoss(),
        record.validationLoss(),
        100 * record.validationNme(),
        record.learningRate(),
        record.seconds(),
        ProgressBar.rate(record.imagesPerSecond()),
        record.loaderWaitSeconds());
    return result;
  }

  /**
   * Prints the time limit as given, in the shortest decimal form that reads back as its value, or
   * in three significant digits where that form is long.
   */
  private void printTimeLimitReached() {
    double minutes = options.timeLimitMinutes();
    String shown = BigDecimal.valueOf(minutes).stripTrailingZeros().toPlainString();
    if (shown.length() > 12) {
      // Such as 1e-300, whose plain form has 300 digits.
      shown = String.format(Locale.ROOT, "%.3g", minutes);
    }
    out.println("time limit of " + shown + (minutes == 1 ? " minute" : " minutes") + " reached");
  }

  /** Returns the end of this invocation's time limit, from now, or null without a limit. */
  private Deadline timeLimit() {
    if (options.timeLimitMinutes() <= 0) {
      return null;
    }
    return Deadline.after(Duration.ofNanos((long) (options.timeLimitMinutes() * 60e9)));
  }

  /** Returns true once {@code timeLimit} has passed, and never without a limit (null). */
  private static boolean passed(Deadline timeLimit) {
    return timeLimit != null && timeLimit.passed();
  }

  /**
   * Redraws {@code curves.png} from {@code history.csv}. The plot is a convenience: where it cannot
   * be drawn (a machine without fonts cannot draw its labels, for one), training goes on, {@code
   * history.csv} still has every value, and the reason is printed once.
   */
  private void drawCurves() {
    try {
      TrainingCurves.write(run.resolve(TrainingParts.HISTORY_FILE), run.resolve(CURVES_FILE));
    } catch (IOException | RuntimeException | Error e) {
      if (e instanceof VirtualMachineError fatal) {
        throw fatal;
      }
      if (!curvesFailed) {
        out.println(
            "warning: cannot draw "
                + run.resolve(CURVES_FILE)
                + " ("
                + e
                + "); training goes on, and history.csv has every value");
      }
      curvesFailed = true;
    }
  }

  private static double elapsedSeconds(long started) {
    return (System.nanoTime() - started) / 1e9;
  }

  /** Loads the model, optimizer, schedule and generator from {@code last.safetensors}. */
  private Position restore(TrainingParts parts) throws IOException {
    Checkpoint checkpoint = Checkpoint.read(run.resolve(LAST));
    checkpoint.loadModel(parts.model());
    checkpoint.loadOptimizer(parts.optimizer());
    Position position = Position.fromMetadata(checkpoint.metadata());
    parts.schedule().loadState(checkpoint.metadata());
    parts.generator().setState(RunMetadata.generatorState(checkpoint.metadata()));
    out.println(
        "resuming at epoch "
            + position.epoch()
            + ", batch "
            + position.batch()
            + " from "
            + run.resolve(LAST));
    return position;
  }

  /** Writes {@code last.safetensors}: the weights, the optimizer's state and the position. */
  private void saveLast(TrainingParts parts, Position position) throws IOException {
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.putAll(position.toMetadata());
    metadata.putAll(parts.schedule().state());
    metadata.putAll(parts.normalization().toMetadata());
    metadata.put(
        RunMetadata.GENERATOR, RunMetadata.formatGeneratorState(parts.generator().state()));
    metadata.put(RunMetadata.MODEL_SPEC, Files.readString(run.resolve(TrainingParts.MODEL_FILE)));
    Checkpoint.save(run.resolve(LAST), parts.model(), parts.optimizer(), metadata);
  }
}
