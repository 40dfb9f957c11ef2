package dev.kiln.keypoints.train;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.IdentitySplit;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.io.AtomicFiles;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Pipelines;
import dev.kiln.keypoints.transform.ToTensor;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.Losses;
import dev.kiln.nn.optim.Optimizer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.function.Function;

/**
 * The parts that one training run trains with, built once when the run starts or resumes and then
 * used by every epoch: the model with its optimizer, schedule and loss, the data split with its
 * pipelines, and the history file. The generator is the one that initialized the weights, and it
 * draws the dropout masks.
 *
 * @param spec the model description that {@code model} was built from
 * @param split the identity split that divides {@code trainingFaces} and {@code validationFaces}
 */
record TrainingParts(
    ModelSpec spec,
    Sequential model,
    Optimizer optimizer,
    Schedule schedule,
    Loss loss,
    KeypointNormalization normalization,
    List<Sample> trainingFaces,
    List<Sample> validationFaces,
    Transform trainPipeline,
    Transform evaluationPipeline,
    Function<List<Sample>, Batch> collate,
    IdentitySplit split,
    History history,
    Generator generator) {

  /** File in the run folder with the model description that the run's last start trained. */
  static final String MODEL_FILE = "model.txt";

  /** Name of the run file that records the device of each start and resume. */
  static final String DEVICES_FILE = "devices.txt";

  /** Name of the run file with one line of losses and NME per epoch. */
  static final String HISTORY_FILE = "history.csv";

  /**
   * Loads the data and the history, and builds the model on {@code device}, the optimizer, the
   * schedule and the pipelines. Nothing is written to the run folder here, because a resume may
   * still fail when it loads the checkpoint. {@link #recordStart} writes the run's files after
   * that.
   */
  static TrainingParts prepare(
      TrainOptions options, Path run, Device device, boolean resuming, PrintWriter out)
      throws IOException {
    ModelSpec spec = ModelPresets.resolve(options.model());
    int inputSize = spec.inputShape()[1];
    out.println("model: " + spec.summary());

    TrainingData data = TrainingData.load(options, inputSize, run, resuming, out);
    Generator generator = new Generator(options.seed());
    Sequential model = spec.build(DType.FLOAT32, generator);
    // Before the optimizer exists, so that its state is created on the device. On the CPU this
    // moves nothing, and the run stays bit-identical to one without the call.
    model.to(device);
    Optimizer optimizer = TrainingSetup.optimizer(options, model.parameters());
    KeypointNormalization normalization = new KeypointNormalization(inputSize);
    Function<List<Sample>, Batch> collate =
        batch ->
            new Batch(
                ToTensor.images(batch),
                ToTensor.keypoints(batch, normalization),
                batch.stream().map(Sample::name).toList());
    return new TrainingParts(
        spec,
        model,
        optimizer,
        TrainingSetup.schedule(options, optimizer),
        Losses.parse(options.loss()),
        normalization,
        data.trainingFaces(),
        data.validationFaces(),
        Pipelines.training(inputSize),
        Pipelines.evaluation(inputSize),
        collate,
        data.split(),
        History.open(run.resolve(HISTORY_FILE)),
        generator);
  }

  /**
   * Writes {@code model.txt}, a line of {@code devices.txt}, and {@code split.txt} where the run
   * has none, into the run folder {@code run} of this start or resume on {@code device}.
   */
  void recordStart(Path run, Device device) throws IOException {
    AtomicFiles.writeString(run.resolve(MODEL_FILE), spec.toText());
    // One line per start or resume, because a resumed run may continue on another device. The
    // file is rewritten whole rather than appended to, so that a symbolic link in its place is
    // replaced like every other run file, and the file it led to, perhaps another run's, is kept.
    Path devices = run.resolve(DEVICES_FILE);
    String earlier = Files.exists(devices) ? Files.readString(devices, StandardCharsets.UTF_8) : "";
    AtomicFiles.writeString(
        devices,
        earlier
            + Instant.now().truncatedTo(ChronoUnit.SECONDS)
            + " "
            + device
            + System.lineSeparator());
    Path splitFile = run.resolve(TrainingData.SPLIT_FILE);
    if (!Files.exists(splitFile)) {
      split.write(splitFile);
    }
  }
}
