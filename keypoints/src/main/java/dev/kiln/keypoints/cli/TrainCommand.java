package dev.kiln.keypoints.cli;

import dev.kiln.core.backend.cuda.AutoDevice;
import dev.kiln.core.backend.cuda.CudaException;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.DataLocation;
import dev.kiln.keypoints.train.TrainOptions;
import dev.kiln.keypoints.train.Trainer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
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
  private static final Set<String> RESUME_OPTIONS = Set.of("--resume", "--epochs", "--device");

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
      description = "mse, l1, smoothl1 or wing (default: ${DEFAULT-VALUE}).")
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
      description = "Share of people held out for validation (default: ${DEFAULT-VALUE}).")
  double validationFraction;

  @Option(
      names = "--loader-threads",
      defaultValue = "1",
      description = "Threads that prepare batches in the background (default: ${DEFAULT-VALUE}).")
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
              + " no limit (default: ${DEFAULT-VALUE}).")
  double timeLimitMinutes;

  @Option(
      names = "--skip-bad-rows",
      description = "Skip bad dataset rows and list them, instead of stopping at the first.")
  boolean skipBadRows;

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description =
          "cpu, cuda (the same as cuda:0), cuda:N, auto (cuda:0 where it is usable, else the"
              + " CPU, and prints why) or emulated (kiln's CUDA kernels compiled for the CPU: a"
              + " test device, far slower than cpu). With --resume, it sets the device for the"
              + " rest of the run (default: ${DEFAULT-VALUE}).")
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
    Device target = resolveDevice(out);
    if (target == null) {
      return 2;
    }
    Trainer trainer;
    if (resume != null) {
      requireResumeOptionsOnly();
      boolean epochsGiven = spec.commandLine().getParseResult().hasMatchedOption("--epochs");
      trainer =
          Trainer.resume(resume, epochsGiven ? epochs : 0, target, out, System.console() != null);
    } else {
      Path run = output != null ? output : defaultRunFolder();
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
      trainer = Trainer.start(options, target, run, out, System.console() != null);
      out.println("run folder: " + run);
    }
    return runWithStopHook(trainer);
  }

  /**
   * Rejects options that a resumed run would ignore, because it continues with the options saved in
   * its folder. Only the epoch count and the device can change.
   */
  private void requireResumeOptionsOnly() {
    List<String> ignored = GivenOptions.matching(spec, name -> !RESUME_OPTIONS.contains(name));
    if (!ignored.isEmpty()) {
      throw new IllegalArgumentException(
          "--resume continues "
              + resume
              + " with the options it was started with (see its options.properties); only"
              + " --epochs and --device can change, so drop "
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
   * Resolves {@code --device} and opens the device, before any data is read, so that an unusable
   * GPU fails at once. Returns null after printing why the device cannot be used.
   */
  private Device resolveDevice(PrintWriter out) {
    PrintWriter err = spec.commandLine().getErr();
    if (device.equals("auto")) {
      AutoDevice.Choice choice = AutoDevice.resolve();
      if (choice.device().isCpu()) {
        out.println("device auto: using the CPU, because " + choice.reason());
        return Device.CPU;
      }
      String failure = open(choice.device());
      if (failure != null) {
        out.println("device auto: using the CPU, because " + failure);
        return Device.CPU;
      }
      out.println(
          "device auto: using " + choice.device() + ", which is usable: " + choice.reason());
      printLibraries(out, choice.device());
      return choice.device();
    }
    Device parsed;
    try {
      parsed = Device.parse(device);
    } catch (IllegalArgumentException e) {
      err.println("kiln train: " + e.getMessage() + ". --device also accepts auto.");
      return null;
    }
    if (parsed.isCpu()) {
      return parsed;
    }
    String failure = open(parsed);
    if (failure != null) {
      err.println(
          "kiln train: cannot train on "
              + parsed
              + ": "
              + failure
              + ". Use --device cpu or --device auto.");
      return null;
    }
    if (parsed.kind() == Device.Kind.EMULATED) {
      out.println(
          "device emulated: kiln's CUDA kernels compiled for the CPU, launched one at a time. It"
              + " exists to test the device path and trains far slower than --device cpu.");
    }
    printLibraries(out, parsed);
    return parsed;
  }

  /** Prints which library serves which layers on {@code target}: cuBLAS, cuDNN or kiln's own. */
  private static void printLibraries(PrintWriter out, Device target) {
    out.println("device " + target + ": " + DeviceKernels.of(target).libraries());
  }

  /** Opens {@code target}'s kernels and returns null, or returns why it cannot be used. */
  private static String open(Device target) {
    try {
      DeviceKernels.of(target);
      return null;
    } catch (IllegalStateException | CudaException | LibraryLoadException e) {
      return e.getMessage().replaceAll("\\.$", "");
    }
  }

  private static Path defaultRunFolder() {
    return Path.of(
        "runs", LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
  }
}
