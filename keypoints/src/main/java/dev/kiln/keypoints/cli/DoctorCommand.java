package dev.kiln.keypoints.cli;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.keypoints.data.DataLocation;
import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.data.IdentitySplit;
import dev.kiln.keypoints.data.LoadOptions;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.doctor.Doctor;
import dev.kiln.keypoints.doctor.DoctorInput;
import dev.kiln.keypoints.doctor.DoctorOptions;
import dev.kiln.keypoints.doctor.Report;
import dev.kiln.keypoints.io.Folders;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.train.ModelChecks;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.train.TrainOptions;
import dev.kiln.keypoints.train.Trainer;
import dev.kiln.keypoints.train.TrainingSetup;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Pipelines;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Losses;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code kiln doctor}: examines a training setup or a run folder and ranks what is wrong. */
@Command(
    name = "doctor",
    mixinStandardHelpOptions = true,
    description = {
      "Examine a training setup and list its problems, the most likely cause first: the data as"
          + " the model sees it, loss baselines, gradient wiring, the layer structure, the output"
          + " layer, activations, layer modes, initialization, a one-batch test and a"
          + " learning-rate range test.",
      "Writes doctor.md and its PNG files to --output, or to the folder doctor/ inside the folder"
          + " given with --run."
    },
    exitCodeOnExecutionException = DoctorCommand.NOT_EXAMINED,
    exitCodeListHeading = "Exit codes:%n",
    exitCodeList = {
      "0:no problem found",
      "1:problems found, which the report lists",
      "2:nothing examined, because an option, the model, the data or the run folder is invalid,"
          + " or the examination stopped with an error. The message names the cause."
    })
final class DoctorCommand implements Callable<Integer> {
  /** Exit code when the examination finds at least one problem. */
  static final int PROBLEMS_FOUND = 1;

  /**
   * Exit code when nothing could be examined, the code of picocli's usage errors, so that a script
   * can tell a setup with problems from an invalid command.
   */
  static final int NOT_EXAMINED = 2;

  /**
   * Folder inside the run folder where {@code --run} writes its report when {@code --output} is not
   * given. The run folder's own {@code doctor.md} is the report of the examination that training
   * started by itself, and its presence keeps a resumed run from starting another, so a manual
   * examination must not replace it.
   */
  static final String RUN_REPORT_FOLDER = "doctor";

  /** The options that {@code --run} takes from the run folder instead of the command line. */
  private static final Set<String> RUN_SETTINGS =
      Set.of("--data", "--model", "--optimizer", "--lr", "--weight-decay", "--loss");

  @Spec CommandSpec spec;

  @Option(
      names = "--run",
      description = "Run folder to examine, with options.properties and last.safetensors.")
  Path run;

  @Option(
      names = "--data",
      description =
          "Dataset folder with training_frames_keypoints.csv and training/ (default: as for"
              + " train).")
  Path data;

  @Option(
      names = "--model",
      defaultValue = "default",
      description = "Preset or model file (default: ${DEFAULT-VALUE}).")
  String model;

  @Option(
      names = "--optimizer",
      defaultValue = "adam",
      description = "adam, adamw or sgd (default: ${DEFAULT-VALUE}).")
  String optimizer;

  @Option(
      names = "--lr",
      defaultValue = "0.001",
      description = "Learning rate (default: ${DEFAULT-VALUE}).")
  double learningRate;

  @Option(
      names = "--weight-decay",
      defaultValue = "0",
      description =
          "Weight decay, as for train: L2 for adam and sgd, decoupled for adamw (default:"
              + " ${DEFAULT-VALUE}).")
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
      names = "--limit",
      defaultValue = "400",
      description = "Maximum number of CSV rows to load, 0 for all (default: ${DEFAULT-VALUE}).")
  int limit;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Images per batch in the checks (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--overfit-steps",
      defaultValue = "150",
      description = "Steps of the one-batch test (default: ${DEFAULT-VALUE}).")
  int overfitSteps;

  @Option(
      names = "--range-steps",
      defaultValue = "100",
      description = "Steps of the learning-rate range test (default: ${DEFAULT-VALUE}).")
  int rangeSteps;

  @Option(names = "--seed", defaultValue = "1", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--output",
      description =
          "Folder for doctor.md and its PNG files (default: doctor-<model>, or with --run the"
              + " folder doctor/ inside the run folder).")
  Path output;

  @Override
  public Integer call() throws IOException {
    PrintWriter out = spec.commandLine().getOut();
    // Checked here, before the data loads, so that a typo does not cost the wait.
    requireAtLeast("--batch-size", batchSize, 2);
    requireAtLeast("--overfit-steps", overfitSteps, 1);
    requireAtLeast("--range-steps", rangeSteps, 10);
    if (limit < 0) {
      throw new ParameterException(
          spec.commandLine(), "--limit must be 0 (all rows) or more, got " + limit);
    }
    if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
      throw new ParameterException(
          spec.commandLine(),
          "--weight-decay must be a finite number, 0 or more, got " + weightDecay);
    }
    if (run == null) {
      // Checked before the data loads, which takes seconds. --run takes both from the run.
      TrainingSetup.requireOptimizerName(optimizer);
      Losses.parse(loss);
    }
    DoctorInput input = run != null ? fromRun(out) : fromOptions(out);
    Path folder = input.options().output();
    List<Path> created = Folders.missingFolders(folder.toAbsolutePath());
    boolean written = false;
    try {
      Files.createDirectories(folder);
      out.println("examining...");
      out.flush();
      Report report = Doctor.examine(input);
      // Flushed before the write, so that the findings reach the terminal even if it fails.
      out.print(report.toText());
      out.flush();
      out.println("wrote " + report.write(folder));
      out.flush();
      written = true;
      return report.healthy() ? 0 : PROBLEMS_FOUND;
    } finally {
      if (!written) {
        // Only empty folders go, so a folder with the plots that the checks wrote stays.
        Folders.deleteEmptyFolders(created);
      }
    }
  }

  private void requireAtLeast(String option, int value, int minimum) {
    if (value < minimum) {
      throw new ParameterException(
          spec.commandLine(), option + " must be at least " + minimum + ", got " + value);
    }
  }

  private DoctorInput fromOptions(PrintWriter out) throws IOException {
    if (data == null) {
      data = DataLocation.defaultFolder();
    }
    ModelSpec modelSpec = ModelPresets.resolve(model);
    Path folder = output != null ? output : Path.of("doctor-" + Path.of(model).getFileName());
    requireReportFolder(folder);
    DoctorInput input =
        build(
            modelSpec, data, optimizer, learningRate, weightDecay, loss, limit, 0.15, folder, out);
    return input.withOptions(input.options().withLearningRateSource("--lr"));
  }

  /**
   * Loads the run's weights and optimizer state, and examines them at the run's {@code --lr} and
   * {@code --weight-decay}. Every schedule of {@code kiln train} starts at {@code --lr} and only
   * lowers it, so {@code --lr} is the largest step the run takes and the value to change when the
   * rate is wrong. The checkpoint contains the rate that the schedule had reached when it was
   * saved, which after a finished cosine run is 1% of {@code --lr}. The report prints that rate
   * beside {@code --lr}.
   */
  private DoctorInput fromRun(PrintWriter out) throws IOException {
    requireNoRunSettings();
    if (!Files.isDirectory(run)) {
      throw new IOException(
          run
              + (Files.exists(run) ? " is not a folder" : ": run folder not found")
              + ": pass --run a folder made by kiln train, such as runs/<date>-<time>");
    }
    Path folder = output != null ? output : run.resolve(RUN_REPORT_FOLDER);
    if (output == null
        && Files.exists(folder, LinkOption.NOFOLLOW_LINKS)
        && !Files.isDirectory(folder)) {
      throw new FileSystemException(
          folder.toString(),
          null,
          "is not a folder, but doctor --run writes its report into a folder of that name in the"
              + " run; move it, or pass --output");
    }
    requireReportFolder(folder);
    TrainOptions options = TrainOptions.read(run);
    Path last = run.resolve(Trainer.LAST);
    if (!Files.exists(last)) {
      throw new IOException(run + " has no " + Trainer.LAST + ": no epoch of that run ended");
    }
    Checkpoint checkpoint = Checkpoint.read(last);
    ModelSpec modelSpec =
        ModelSpec.parse(
            RunMetadata.require(checkpoint.metadata(), RunMetadata.MODEL_SPEC), last.toString());
    int rows = rowsToExamine(options.limit(), limit);
    DoctorInput input =
        build(
            modelSpec,
            options.data(),
            options.optimizer(),
            options.learningRate(),
            options.weightDecay(),
            options.loss(),
            rows,
            options.validationFraction(),
            folder,
            out);
    checkpoint.loadModel(input.model());
    checkpoint.loadOptimizer(input.optimizer());
    String rateSource = rateSource(options, input.optimizer().learningRate());
    input.optimizer().setLearningRate(options.learningRate());
    List<EpochRecord> history = readHistory(run.resolve("history.csv"));
    return new DoctorInput(
        input.model(),
        input.optimizer(),
        input.loss(),
        input.trainingFaces(),
        input.trainPipeline(),
        input.validationFaces(),
        input.validationPipeline(),
        input.normalization(),
        input.collate(),
        input.generator(),
        history,
        input.options().withLearningRateSource(rateSource));
  }

  /**
   * Rejects the options that describe a setup, because {@code --run} takes the data, model,
   * optimizer, learning rate, weight decay and loss from the run's {@code options.properties}.
   */
  private void requireNoRunSettings() {
    List<String> ignored = GivenOptions.matching(spec, RUN_SETTINGS::contains);
    if (!ignored.isEmpty()) {
      throw new IllegalArgumentException(
          "--run examines "
              + run
              + " with the settings it was trained with (see its options.properties), so drop "
              + String.join(", ", ignored)
              + ", or examine a new setup without --run");
    }
  }

  /**
   * Checks, before the data loads, that {@code folder} can take the report, so that a file in its
   * place or in place of doctor.md does not fail the command after the whole examination.
   */
  private static void requireReportFolder(Path folder) throws IOException {
    Main.requireOutputFolder(folder);
    Main.requireOutputFiles(folder, List.of(Report.FILE_NAME));
  }

  /** Names the run's {@code --lr} and, where it differs, the rate saved in the checkpoint. */
  private String rateSource(TrainOptions options, double saved) {
    String source = "--lr of the run in " + run.resolve(TrainOptions.FILE_NAME);
    if (saved == options.learningRate()) {
      return source;
    }
    return String.format(
        Locale.ROOT,
        "%s; its %s schedule stood at %.3g when %s was saved",
        source,
        options.schedule(),
        saved,
        Trainer.LAST);
  }

  private DoctorInput build(
      ModelSpec modelSpec,
      Path dataFolder,
      String optimizerName,
      double rate,
      double weightDecay,
      String lossName,
      int rows,
      double validationFraction,
      Path folder,
      PrintWriter out)
      throws IOException {
    // kiln train runs the same check. It runs before the data loads, because each check would
    // otherwise feed gray crops to the model and fail on its first forward pass.
    ModelChecks.requireGrayKeypointInput(modelSpec);
    int inputSize = modelSpec.inputShape()[1];
    Path csv = dataFolder.resolve("training_frames_keypoints.csv");
    if (!Files.isRegularFile(csv)) {
      throw new IOException(
          csv + " not found: point --data at a folder with training_frames_keypoints.csv");
    }
    FaceDataset.Loaded loaded =
        FaceDataset.load(
            csv,
            dataFolder.resolve("training"),
            LoadOptions.defaults()
                .withOnBadRow(FaceDataset.OnBadRow.SKIP)
                .withShorterSide(Pipelines.rescaledSide(inputSize))
                .withLimit(rows == 0 ? Integer.MAX_VALUE : rows));
    if (loaded.report().skippedCount() > 0) {
      out.println(loaded.report().summary());
    }
    List<Sample> samples = loaded.samples();
    IdentitySplit split = IdentitySplit.of(samples, validationFraction, seed);
    int trainingFaces = split.train(samples).size();
    int validationFaces = split.validation(samples).size();
    out.printf(
        Locale.ROOT,
        "model %s; %d %s loaded, %d for training and %d for validation%n",
        modelSpec.summary(),
        samples.size(),
        samples.size() == 1 ? "face" : "faces",
        trainingFaces,
        validationFaces);
    requireBothSplits(trainingFaces, validationFaces, rows);
    Generator generator = new Generator(seed);
    Sequential network = modelSpec.build(DType.FLOAT32, generator);
    KeypointNormalization normalization = new KeypointNormalization(inputSize);
    DoctorOptions options =
        DoctorOptions.defaults()
            .withBatchSize(batchSize)
            .withSteps(overfitSteps, rangeSteps)
            .withOutput(folder);
    return new DoctorInput(
        network,
        TrainingSetup.optimizer(optimizerName, rate, weightDecay, network.parameters()),
        Losses.parse(lossName),
        split.train(samples),
        Pipelines.training(inputSize),
        split.validation(samples),
        Pipelines.evaluation(inputSize),
        normalization,
        DoctorInput.standardCollate(normalization),
        generator,
        List.of(),
        options);
  }

  /**
   * Returns the rows that the doctor loads for a run: the smaller of the run's --limit and the
   * doctor's, where 0 means all rows.
   */
  static int rowsToExamine(int runLimit, int doctorLimit) {
    if (runLimit == 0 || doctorLimit == 0) {
      return Math.max(runLimit, doctorLimit);
    }
    return Math.min(runLimit, doctorLimit);
  }

  /**
   * Rejects a split by identity that left fewer than {@link DoctorInput#MIN_FACES} training or
   * validation faces, before the model is built, with advice that fits the options of this command.
   */
  private void requireBothSplits(int trainingFaces, int validationFaces, int rows)
      throws IOException {
    if (trainingFaces >= DoctorInput.MIN_FACES && validationFaces >= DoctorInput.MIN_FACES) {
      return;
    }
    // With rows 0, every row of the CSV was loaded, so a larger --limit cannot help.
    String largerLimit = "use a larger --limit than " + rows;
    String advice;
    if (run == null) {
      String otherCsv = "a CSV with faces of more people";
      advice = rows == 0 ? "use " + otherCsv : largerLimit + ", or " + otherCsv;
    } else {
      String otherRun =
          "examine a run trained on faces of more people or with another --val-fraction";
      advice =
          rows == 0
              ? otherRun
              : largerLimit + " if the run's own --limit allows more rows, or " + otherRun;
    }
    throw new IOException(
        "the split by identity left "
            + trainingFaces
            + " training and "
            + validationFaces
            + " validation faces, but the doctor needs at least "
            + DoctorInput.MIN_FACES
            + " of each, because it evaluates batches of two faces or more: "
            + advice);
  }

  private static List<EpochRecord> readHistory(Path file) throws IOException {
    List<EpochRecord> records = new ArrayList<>();
    if (!Files.exists(file)) {
      return records;
    }
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (!line.isBlank() && !line.startsWith("epoch")) {
        records.add(EpochRecord.parse(line));
      }
    }
    return records;
  }
}
