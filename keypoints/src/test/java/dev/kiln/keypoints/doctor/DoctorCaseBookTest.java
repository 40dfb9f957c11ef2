package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.IdentitySplit;
import dev.kiln.keypoints.data.LoadOptions;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.transform.BrightnessContrast;
import dev.kiln.keypoints.transform.Compose;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Pipelines;
import dev.kiln.keypoints.transform.RandomAffine;
import dev.kiln.keypoints.transform.RandomCrop;
import dev.kiln.keypoints.transform.Rescale;
import dev.kiln.keypoints.transform.ToTensor;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.loss.Losses;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The case book: one broken training setup per test, each on a few hundred real faces, in which the
 * doctor must rank the true cause first; and the healthy setup, which must get no problem.
 */
class DoctorCaseBookTest {
  private static final int SIZE = 96;

  /** A small model for the broken cases, so that each examination takes a few seconds. */
  private static final String SMALL_MODEL =
      """
      input 1x96x96
      conv 8 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 4
      conv 16 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 4
      flatten
      linear 64
      relu
      linear 136
      """;

  private static List<Sample> train;
  private static List<Sample> validation;
  private static final KeypointNormalization NORMALIZATION = new KeypointNormalization(SIZE);

  @TempDir Path folder;

  @BeforeAll
  static void load() throws Exception {
    Path data = TestData.facialKeypoints();
    List<Sample> samples =
        FaceDataset.load(
                data.resolve("training_frames_keypoints.csv"),
                data.resolve("training"),
                LoadOptions.defaults().withLimit(300).withShorterSide(110))
            .samples();
    IdentitySplit split = IdentitySplit.of(samples, 0.15, 1);
    train = split.train(samples);
    validation = split.validation(samples);
  }

  /** The parts of a setup that a case changes. */
  private record Setup(
      Sequential model,
      Optimizer optimizer,
      String loss,
      Transform trainPipeline,
      Transform validationPipeline,
      Function<List<Sample>, Batch> collate) {

    static Setup of(String modelText, double learningRate) {
      Sequential model = ModelSpec.parse(modelText, "test").build(DType.FLOAT32, new Generator(7));
      return new Setup(
          model,
          new Adam(model.parameters()).learningRate(learningRate),
          "l1",
          Pipelines.training(SIZE),
          Pipelines.evaluation(SIZE),
          DoctorInput.standardCollate(NORMALIZATION));
    }

    static Setup small() {
      return of(SMALL_MODEL, 5e-4);
    }

    Setup withOptimizer(Optimizer value) {
      return new Setup(model, value, loss, trainPipeline, validationPipeline, collate);
    }

    Setup withPipelines(Transform training, Transform evaluation) {
      return new Setup(model, optimizer, loss, training, evaluation, collate);
    }

    Setup withCollate(Function<List<Sample>, Batch> value) {
      return new Setup(model, optimizer, loss, trainPipeline, validationPipeline, value);
    }
  }

  private Report examine(Setup setup) {
    DoctorOptions options =
        DoctorOptions.defaults().withBatchSize(8).withSteps(60, 40).withOutput(folder);
    Report report = Doctor.examine(input(setup, options));
    System.out.println(report.toText());
    return report;
  }

  private static DoctorInput input(Setup setup, DoctorOptions options) {
    return new DoctorInput(
        setup.model(),
        setup.optimizer(),
        Losses.parse(setup.loss()),
        train,
        setup.trainPipeline(),
        validation,
        setup.validationPipeline(),
        NORMALIZATION,
        setup.collate(),
        new Generator(3),
        List.of(),
        options);
  }

  private static void assertFirst(String expectedCode, Report report) {
    Finding first = report.first();
    assertNotNull(first, "the doctor found no problem");
    assertEquals(Severity.CRITICAL, first.severity(), first.title());
    assertEquals(expectedCode, first.code(), first.title());
    assertNoPositionWords(report);
  }

  /**
   * Checks that no fix points at "the findings above", because the ranking decides the order and
   * such a finding may come first, with nothing above it.
   */
  private static void assertNoPositionWords(Report report) {
    Pattern position = Pattern.compile("\\babove\\b(?!\\s*\\d)");
    for (Finding finding : report.findings()) {
      String fix = finding.fix() == null ? "" : finding.fix();
      assertFalse(position.matcher(fix).find(), finding.code() + ": " + fix);
    }
  }

  @Test
  void deadlineStopsLongCheck() {
    Setup setup = Setup.small();
    float[] before = setup.model().parameters().getFirst().toFloatArray();
    DoctorOptions options =
        DoctorOptions.defaults()
            .withChecks(EnumSet.of(Check.OVERFIT, Check.LEARNING_RATE))
            .withBatchSize(8)
            .withSteps(1_000_000, 40)
            .withDeadline(Deadline.after(Duration.ofSeconds(2)));
    long start = System.nanoTime();

    Report report = Doctor.examine(input(setup, options));

    double seconds = (System.nanoTime() - start) / 1e9;
    assertTrue(seconds < 60, "a million steps should have stopped at the deadline: " + seconds);
    Finding stopped = report.findings().getLast();
    assertEquals("deadline-reached", stopped.code(), report.toText());
    assertTrue(
        stopped.title().endsWith("did not finish: overfit, learning_rate."), stopped.title());
    assertArrayEquals(
        before, setup.model().parameters().getFirst().toFloatArray(), 0f, "weights restored");
  }

  @Test
  void passedDeadlineRunsNoCheck() {
    DoctorOptions options =
        DoctorOptions.defaults()
            .withChecks(EnumSet.of(Check.WIRING))
            .withBatchSize(8)
            .withDeadline(Deadline.after(Duration.ofSeconds(-1)));

    Report report = Doctor.examine(input(Setup.small(), options));

    assertEquals(1, report.findings().size(), report.toText());
    assertEquals("deadline-reached", report.findings().getFirst().code(), report.toText());
  }

  @Test
  void deadlineFollowsMonotonicClock() {
    AtomicLong nanoTime = new AtomicLong(Long.MAX_VALUE - 1_000);
    // Each reading advances the clock by a minute, so the hour passes at the 60th reading, within
    // the 100 steps of the one-batch test, however little wall time goes by. The readings wrap past
    // Long.MAX_VALUE, as those of System.nanoTime may.
    Deadline hour =
        new Deadline(
            () -> nanoTime.addAndGet(Duration.ofMinutes(1).toNanos()),
            nanoTime.get(),
            Duration.ofHours(1).toNanos());
    DoctorOptions options =
        DoctorOptions.defaults()
            .withChecks(EnumSet.of(Check.OVERFIT))
            .withBatchSize(8)
            .withSteps(100, 40)
            .withDeadline(hour);

    Report report = Doctor.examine(input(Setup.small(), options));

    Finding stopped = report.findings().getLast();
    assertEquals("deadline-reached", stopped.code(), report.toText());
    assertTrue(stopped.title().endsWith("did not finish: overfit."), stopped.title());
  }

  @Test
  void stoppedClockKeepsDeadlineAhead() {
    // The clock never advances, as the monotonic clock does not when the wall clock jumps ahead.
    Deadline nanosecond = new Deadline(() -> 0L, 0L, 1L);
    DoctorOptions options =
        DoctorOptions.defaults()
            .withChecks(EnumSet.of(Check.WIRING))
            .withBatchSize(8)
            .withDeadline(nanosecond);

    Report report = Doctor.examine(input(Setup.small(), options));

    for (Finding finding : report.findings()) {
      assertFalse(finding.code().equals("deadline-reached"), report.toText());
    }
    assertEquals(Duration.ofNanos(1), nanosecond.remaining());
  }

  @Test
  void optimizerForOtherModelRankedFirst() {
    Setup setup = Setup.small();
    Sequential other = ModelSpec.parse(SMALL_MODEL, "test").build(DType.FLOAT32, new Generator(8));
    Report report = examine(setup.withOptimizer(new Adam(other.parameters()).learningRate(5e-4)));
    assertFirst("optimizer-other-model", report);
  }

  @Test
  void reluOnOutputRankedFirst() {
    Report report = examine(Setup.of(SMALL_MODEL + "relu\n", 5e-4));
    assertFirst("output-activation", report);
  }

  @Test
  void dropoutOnOutputRankedFirst() {
    Report report = examine(Setup.of(SMALL_MODEL + "dropout 0.5\n", 5e-4));
    assertFirst("dropout-after-output", report);
  }

  @Test
  void oneUnitHiddenLayerRankedFirst() {
    Report report = examine(Setup.of(SMALL_MODEL.replace("linear 64", "linear 1"), 5e-4));
    assertFirst("narrow-hidden-layer", report);
  }

  @Test
  void imagesScaledTwiceRankedFirst() {
    Transform divide = (sample, random) -> divideBy255(sample);
    Setup setup =
        Setup.small()
            .withPipelines(
                Compose.of(Pipelines.training(SIZE), divide),
                Compose.of(Pipelines.evaluation(SIZE), divide));
    assertFirst("input-scaled-twice", examine(setup));
  }

  @Test
  void flipWithoutSwapRankedFirst() {
    Transform training =
        Compose.of(
            new Rescale(Pipelines.rescaledSide(SIZE)),
            new RandomAffine(Pipelines.MAX_DEGREES, Pipelines.MIN_SCALE, Pipelines.MAX_SCALE),
            new RandomCrop(SIZE),
            DoctorCaseBookTest::mirrorWithoutSwap,
            new BrightnessContrast(Pipelines.MAX_BRIGHTNESS, Pipelines.MAX_CONTRAST));
    Report report = examine(Setup.small().withPipelines(training, Pipelines.evaluation(SIZE)));
    assertFirst("flip-without-swap", report);
    assertNotNull(report.first().image(), "the finding should point at the contact sheet");
    assertTrue(Files.exists(report.first().image()));
  }

  @Test
  void adamLearningRateTooHighRankedFirst() {
    assertFirst("learning-rate-too-high", examine(Setup.of(SMALL_MODEL, 0.1)));
    assertTrue(Files.exists(folder.resolve("doctor-lr-range.png")));
  }

  @Test
  void uniformInitRankedFirst() {
    Setup setup = Setup.small();
    Generator generator = new Generator(5);
    try (var _ = GradMode.noGrad()) {
      for (Tensor parameter : setup.model().parameters()) {
        if (parameter.dim() >= 2) {
          Init.uniform(parameter, 0, 1, generator);
        }
      }
    }
    assertFirst("init-one-signed", examine(setup));
  }

  @Test
  void targetsInPixelsRankedFirst() {
    Function<List<Sample>, Batch> raw = DoctorCaseBookTest::pixelTargets;
    assertFirst("targets-not-normalized", examine(Setup.small().withCollate(raw)));
  }

  @Test
  void healthyDefaultHasNoProblems() throws Exception {
    Setup setup = Setup.of(ModelPresets.text("default"), 5e-4);
    Report report = examine(setup);
    assertTrue(report.healthy(), () -> "false alarms: " + report.problems());
    Path written = report.write(folder);
    assertTrue(Files.readString(written).contains("No problems found."));
  }

  /**
   * Builds a batch whose targets are the keypoints in pixels, as if normalization were left out.
   */
  static Batch pixelTargets(List<Sample> samples) {
    float[] values = new float[samples.size() * 2 * Sample.POINTS];
    for (int n = 0; n < samples.size(); n++) {
      double[] points = samples.get(n).keypoints();
      for (int i = 0; i < points.length; i++) {
        values[n * points.length + i] = (float) points[i];
      }
    }
    return new Batch(
        ToTensor.images(samples),
        Tensor.of(values, samples.size(), 2 * Sample.POINTS),
        samples.stream().map(Sample::name).toList());
  }

  private static Sample divideBy255(Sample sample) {
    float[] pixels = sample.image().pixels().clone();
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] /= 255f;
    }
    GrayImage image = sample.image();
    return sample.with(new GrayImage(image.width(), image.height(), pixels), sample.keypoints());
  }

  /** Mirrors half of the faces left to right but keeps each point's index: the student's bug. */
  private static Sample mirrorWithoutSwap(Sample sample, Generator random) {
    if (random.nextDouble() >= 0.5) {
      return sample;
    }
    GrayImage image = sample.image();
    int width = image.width();
    float[] mirrored = new float[image.pixels().length];
    for (int y = 0; y < image.height(); y++) {
      for (int x = 0; x < width; x++) {
        mirrored[y * width + x] = image.get(width - 1 - x, y);
      }
    }
    double[] points = sample.keypoints().clone();
    for (int i = 0; i < points.length; i += 2) {
      points[i] = width - points[i];
    }
    return sample.with(new GrayImage(width, image.height(), mirrored), points);
  }
}
