package dev.kiln.keypoints.cli;

import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.DataLocation;
import dev.kiln.keypoints.train.TrainOptions;
import dev.kiln.keypoints.train.Trainer;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code kiln train}: trains a keypoint model and writes a run folder. */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description = {
      "Train a 68-point face keypoint model on the CPU, a CUDA GPU or the emulated test device.",
      "The run folder gets options.properties, split.txt, model.txt, devices.txt, history.csv,"
          + " curves.png,"
          + " best.safetensors and last.safetensors. Ctrl-C saves last.safetensors and stops;"
          + " --resume continues from it."
    })
final class TrainCommand implements Callable<Integer> {
  /** How long Ctrl-C waits for the checkpoint to be written before the JVM exits anyway. */
  private static final long STOP_TIMEOUT_SECONDS = 120;

  /** The options that a resumed run accepts; every other one is fixed when the run starts. */
  private static final Set<String> RESUME_OPTIONS =
      Set.of("--resume", "--epochs", "--device", "--time-limit");

  @Spec CommandSpec spec;

  @Option(
      names = "--data",
      description =
          "Dataset folder with training_frames_keypoints.csv and training/ (default: $KILN_DATA/"
              + "facial-keypoints when KILN_DATA is set, else data/facial-keypoints).")
  Path data;

  @Option(
      names = "--model",
      defaultValue = "default",
      description =
          "Preset (default, naimishnet, lenet-20m, lenet-48m) or model file (default:"
              + " ${DEFAULT-VALUE}).")
  String model;

  @Option(
      names = "--epochs",
      defaultValue = "62",
      description = "Epochs (default: ${DEFAULT-VALUE}).")
  int epochs;

  @Option(
      names = "--batch-size",
      defaultValue = "32",
      description = "Images per batch (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--optimizer",
      defaultValue = "adam",
      description = "adam, adamw or sgd (default: ${DEFAULT-VALUE}).")
  String optimizer;

  @Option(
      names = "--lr",
      defaultValue = "0.001",
      description = "Initial learning rate (default: ${DEFAULT-VALUE}).")
  double learningRate;

  @Option(
      names = "--weight-decay",
      defaultValue = "0",
      description = "Weight decay (default: ${DEFAULT-VALUE}).")
  double weightDecay;

  @Option(
      names = "--loss",
      defaultValue = "l1",
      description =
          "mse, l1, smoothl1 or wing (default: ${DEFAULT-VALUE}). The keypoints are scaled to"
              + " [-1, 1], and the losses keep PyTorch's and the paper's settings in those units:"
              + " smoothl1 (beta 1) then works like mse, and wing (w 10, epsilon 2) much like l1.")
  String loss;

  @Option(
      names = "--schedule",
      defaultValue = "cosine",
      description = "cosine, step, plateau or none (default: ${DEFAULT-VALUE}).")
  String schedule;

  @Option(names = "--seed", defaultValue = "1", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--val-fraction",
      defaultValue = "0.15",
      description =
          "Share of the faces held out for validation, whole people at a time (default:"
              + " ${DEFAULT-VALUE}).")
  double validationFraction;

  @Option(
      names = "--loader-threads",
      defaultValue = "1",
      description =
          "Threads that prepare batches in the background, from 0 to "
              + TrainOptions.MAX_LOADER_THREADS
              + "; 0 prepares each batch on the training thread, between steps (default:"
              + " ${DEFAULT-VALUE}).")
  int loaderThreads;

  @Option(
      names = "--limit",
      defaultValue = "0",
      description = "Read at most this many CSV rows, 0 for all (default: ${DEFAULT-VALUE}).")
  int limit;

  @Option(
      names = "--time-limit",
      defaultValue = "0",
      description =
          "Stop after this many minutes of this invocation, at the end of a batch, and save the"
              + " position as Ctrl-C does (an epoch that was finished is validated first); 0 for"
              + " no limit (default: ${DEFAULT-VALUE}). With --resume, it replaces the run's limit,"
              + " which the run otherwise keeps.")
  double timeLimitMinutes;

  @Option(
      names = "--skip-bad-rows",
      description = "Skip bad dataset rows and list them, instead of stopping at the first.")
  boolean skipBadRows;

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description =
          DeviceOption.NAMES
              + " With --resume, it sets the device for the rest of the run (default:"
              + " ${DEFAULT-VALUE}).")
  String device;

  @Option(names = "--output", description = "Run folder to create (default: runs/<date>-<time>).")
  Path output;

  @Option(
      names = "--resume",
      description = "Continue the run in this folder from its last.safetensors.")
  Path resume;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Device target = DeviceOption.resolve(spec, device);
    if (target == null) {
      return DeviceOption.UNUSABLE;
    }
    Trainer trainer;
    if (resume != null) {
      requireResumeOptionsOnly();
      var parsed = spec.commandLine().getParseResult();
      OptionalInt newEpochs =
          parsed.hasMatchedOption("--epochs") ? OptionalInt.of(epochs) : OptionalInt.empty();
      OptionalDouble newTimeLimit =
          parsed.hasMatchedOption("--time-limit")
              ? OptionalDouble.of(timeLimitMinutes)
              : OptionalDouble.empty();
      trainer =
          Trainer.resume(resume, newEpochs, newTimeLimit, target, out, System.console() != null);
    } else {
      // Normalized, so that "." and ".." parts name the folder that creating it makes.
      Path run = output != null ? output.normalize() : defaultRunFolder();
      if (run.toString().isEmpty()) {
        run = Path.of(".");
      }
      TrainOptions options =
          new TrainOptions(
              // Absolute, so that a resume from another folder finds the data again.
              (data != null ? data : DataLocation.defaultFolder()).toAbsolutePath().normalize(),
              model,
              epochs,
              batchSize,
              optimizer,
              learningRate,
              weightDecay,
              loss,
              schedule,
              seed,
              validationFraction,
              loaderThreads,
              limit,
              timeLimitMinutes,
              skipBadRows);
      Main.requireOutputFolder(run);
      int processors = Runtime.getRuntime().availableProcessors();
      if (loaderThreads > processors) {
        out.println(
            "note: --loader-threads "
                + loaderThreads
                + " is more than the "
                + processors
                + " processors Java sees, so the extra threads only hold batches in memory");
      }
      trainer = Trainer.start(options, target, run, out, System.console() != null);
    }
    return runWithStopHook(trainer);
  }

  /**
   * Rejects options that a resumed run would ignore, because it continues with the options saved in
   * its folder. Only the epoch count, the device and the time limit can change.
   */
  private void requireResumeOptionsOnly() {
    List<String> ignored = GivenOptions.matching(spec, name -> !RESUME_OPTIONS.contains(name));
    if (!ignored.isEmpty()) {
      throw new IllegalArgumentException(
          "--resume continues "
              + resume
              + " with the options it was started with (see its options.properties); only"
              + " --epochs, --device and --time-limit can change, so drop "
              + String.join(", ", ignored));
    }
  }

  /**
   * Runs the trainer. On Ctrl-C, the hook requests a save and stop, then waits until both are done.
   */
  private int runWithStopHook(Trainer trainer) throws Exception {
    CountDownLatch finished = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              trainer.requestStop();
              try {
                finished.await(STOP_TIMEOUT_SECONDS, TimeUnit.SECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "kiln-train-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      trainer.run();
      return 0;
    } finally {
      finished.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // The JVM is already shutting down because of Ctrl-C; the hook is running.
      }
    }
  }

  /**
   * Returns {@code runs/<date>-<time>}, with {@code -2}, {@code -3} and so on added where a run
   * started in the same second has the name. Two runs that pick the same name at once are kept
   * apart by the folder's claim file, and the second then fails.
   */
  private static Path defaultRunFolder() {
    String name = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
    Path folder = Path.of("runs", name);
    for (int copy = 2; Files.exists(folder, LinkOption.NOFOLLOW_LINKS); copy++) {
      folder = Path.of("runs", name + "-" + copy);
    }
    return folder;
  }
}
