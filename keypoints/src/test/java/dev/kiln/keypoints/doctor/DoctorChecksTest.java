package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Losses;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Single doctor checks on synthetic 16x16 faces, so that they run without the dataset: what each
 * check measures, and the wording of the findings that explain why a run does not learn.
 */
class DoctorChecksTest {
  private static final int SIZE = 16;
  private static final KeypointNormalization NORMALIZATION = new KeypointNormalization(SIZE);
  private static final Transform UNCHANGED = (sample, random) -> sample;

  private static final String DROPOUT_MODEL =
      """
      input 1x16x16
      flatten
      linear 32
      relu
      dropout 0.5
      linear 136
      """;

  /** A model whose output is the bias alone once its weights are 0. */
  private static final String LINEAR_MODEL =
      """
      input 1x16x16
      flatten
      linear 136
      """;

  private static List<Sample> faces(String prefix, int count, long seed) {
    Generator random = new Generator(seed);
    List<Sample> faces = new ArrayList<>();
    for (int n = 0; n < count; n++) {
      float[] pixels = new float[SIZE * SIZE];
      for (int i = 0; i < pixels.length; i++) {
        pixels[i] = (float) random.nextDouble();
      }
      double[] points = new double[2 * Sample.POINTS];
      for (int i = 0; i < points.length; i++) {
        points[i] = 2 + 12 * random.nextDouble();
      }
      faces.add(new Sample(prefix + n, new GrayImage(SIZE, SIZE, pixels), points));
    }
    return faces;
  }

  private static Sequential model(String text) {
    return ModelSpec.parse(text, "test").build(DType.FLOAT32, new Generator(7));
  }

  private static DoctorInput input(
      Sequential model,
      Optimizer optimizer,
      Function<List<Sample>, Batch> collate,
      List<EpochRecord> history,
      DoctorOptions options) {
    return input("l1", model, optimizer, collate, history, options);
  }

  private static DoctorInput input(
      String loss,
      Sequential model,
      Optimizer optimizer,
      Function<List<Sample>, Batch> collate,
      List<EpochRecord> history,
      DoctorOptions options) {
    return new DoctorInput(
        model,
        optimizer,
        Losses.parse(loss),
        faces("train-", 40, 1),
        UNCHANGED,
        faces("validation-", 12, 2),
        UNCHANGED,
        NORMALIZATION,
        collate,
        new Generator(3),
        history,
        options);
  }

  private static DoctorInput input(Sequential model, Optimizer optimizer) {
    return input(
        model,
        optimizer,
        DoctorInput.standardCollate(NORMALIZATION),
        List.of(),
        DoctorOptions.defaults().withBatchSize(4));
  }

  private static Finding find(List<Finding> findings, String code) {
    return findings.stream()
        .filter(finding -> finding.code().equals(code))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no " + code + " finding in " + findings));
  }

  @Test
  void baselineMeasuresTrainedModelOnSampledFaces() {
    Sequential model = model(DROPOUT_MODEL);
    // A recorded loss far from anything the model gives on the sampled faces.
    List<EpochRecord> history = List.of(new EpochRecord(5, 0.3, 42.0, 0.1, 1e-3, 1, 100, 0));
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()),
            DoctorInput.standardCollate(NORMALIZATION),
            history,
            DoctorOptions.defaults().withBatchSize(4));
    Workbench bench = Workbench.of(input);
    model.eval();
    double expected = bench.meanLoss(bench.validationBatches());
    model.train();

    BaselineCheck check = BaselineCheck.measure(bench);

    assertEquals(expected, check.modelLoss(), 1e-12, "eval-mode loss on the sampled faces");
    assertNotEquals(42.0, check.modelLoss(), "the run's recorded loss covers other faces");
    assertTrue(model.isTraining(), "the check restores training mode");
    String evidence = find(check.findings(5), "baselines").evidence();
    assertTrue(evidence.contains("(after epoch 5)"), evidence);
  }

  /**
   * A trained model at the median shape's loss, which lies below the mean shape's as it does under
   * L1 on skewed targets, is no better than a constant, and the evidence shows both baselines.
   */
  @Test
  void baselineFlagsModelAtMedianShape() {
    BaselineCheck check = new BaselineCheck(0.5, 0.12, 0.10, 0.10);

    Finding finding = find(check.findings(5), "loss-at-constant-baseline");

    assertEquals(Severity.WARNING, finding.severity());
    assertEquals(0.10, check.constantShapeLoss(), 1e-12);
    assertTrue(
        finding.evidence().contains("mean training shape 0.120, median training shape 0.100"),
        finding.evidence());
  }

  @Test
  void baselinePassesModelBelowBothShapes() {
    List<Finding> findings = new BaselineCheck(0.5, 0.12, 0.10, 0.05).findings(5);

    assertEquals(List.of("baselines"), findings.stream().map(Finding::code).toList());
  }

  /**
   * An optimizer that does nothing below {@code threshold} and fills every parameter with 1e6 at or
   * above it, so that the loss blows up after exactly one known step.
   */
  private static final class BreakingOptimizer extends Optimizer {
    private final double threshold;

    BreakingOptimizer(List<Tensor> parameters, double threshold) {
      super(parameters, LearningRateCheck.LOWEST);
      this.threshold = threshold;
    }

    @Override
    protected void update(int index, Tensor parameter, Tensor grad, Map<String, Tensor> state) {
      if (learningRate() >= threshold) {
        parameter.copyFrom(Tensor.full(1e6, parameter.dtype(), parameter.shape()));
      }
    }

    @Override
    protected List<String> stateNames() {
      return List.of();
    }
  }

  @Test
  void rangeTestReportsRateOfDivergingStep() {
    int steps = 20;
    double growth =
        Math.pow(LearningRateCheck.HIGHEST / LearningRateCheck.LOWEST, 1.0 / (steps - 1));
    double breaking = LearningRateCheck.LOWEST * Math.pow(growth, 10);
    Sequential model = model(DROPOUT_MODEL);
    // Halfway between the rates of steps 9 and 10 on a log scale, so step 10 is the first to break.
    Optimizer optimizer = new BreakingOptimizer(model.parameters(), breaking / Math.sqrt(growth));
    DoctorInput input =
        input(
            model,
            optimizer,
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(10, steps));

    LearningRateCheck check = LearningRateCheck.measure(Workbench.of(input));

    assertEquals(breaking, check.divergence(), 1e-9 * breaking, "the rate of the breaking step");
    assertEquals(11, check.rates().length, "steps 0 to 10 were taken");
    assertEquals(check.rates().length, check.losses().length);
    assertTrue(check.losses()[9] < 10, "the loss after step 9 is still small");
    assertTrue(check.losses()[10] > 1e3, "the loss after step 10 has blown up");
  }

  /**
   * The same predictions judged with the mse and the l1 loss diverge at the same step. An output
   * bias of 1000 times the rate moves the predictions away from the targets as the rate grows. The
   * mse loss reaches 4 times its lowest value when the error has about doubled, steps before the l1
   * loss does, so a rule on the loss would call the mse sweep diverged earlier.
   */
  @Test
  void rangeTestDivergenceIndependentOfLoss() {
    Map<String, LearningRateCheck> checks = new LinkedHashMap<>();
    for (String loss : List.of("mse", "l1")) {
      Sequential model = model(LINEAR_MODEL);
      DoctorInput input =
          input(
              loss,
              model,
              new ConstantOutputOptimizer(model.parameters(), rate -> 1000 * rate),
              DoctorInput.standardCollate(NORMALIZATION),
              List.of(),
              DoctorOptions.defaults().withBatchSize(4));
      checks.put(loss, LearningRateCheck.measure(Workbench.of(input)));
    }
    LearningRateCheck mse = checks.get("mse");
    LearningRateCheck l1 = checks.get("l1");
    int diverged = l1.rates().length - 1;

    assertFalse(Double.isNaN(l1.divergence()), "the l1 sweep diverges");
    assertEquals(l1.divergence(), mse.divergence(), "the rate of the diverging step");
    assertArrayEquals(l1.errors(), mse.errors(), 1e-6, "the errors of both sweeps");
    assertArrayEquals(l1.losses(), l1.errors(), 1e-6, "for l1 the error is the loss");
    assertTrue(
        firstAboveFourTimesLowest(mse.losses()) < diverged,
        "the mse loss passes 4 times its lowest value before the diverging step "
            + diverged
            + ": "
            + Arrays.toString(mse.losses()));
  }

  /**
   * Returns the range test on {@link #DROPOUT_MODEL} after a one-batch test of {@code overfitSteps}
   * steps on the same workbench, or without one where {@code overfitSteps} is 0.
   */
  private static LearningRateCheck rangeTestAfterOverfit(int overfitSteps) {
    Sequential model = model(DROPOUT_MODEL);
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()).learningRate(1e-3),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(Math.max(1, overfitSteps), 20));
    Workbench bench = Workbench.of(input);
    if (overfitSteps > 0) {
      OverfitCheck.run(bench);
    }
    return LearningRateCheck.measure(bench);
  }

  /**
   * The one-batch test trains with dropout on, so it draws masks. The range test after it must
   * start from the same weights, optimizer state and masks whatever the one-batch test's length.
   */
  @Test
  void rangeTestIndependentOfOverfitSteps() {
    LearningRateCheck alone = rangeTestAfterOverfit(0);

    assertEquals(alone, rangeTestAfterOverfit(3), "after a one-batch test of 3 steps");
    assertEquals(alone, rangeTestAfterOverfit(30), "after a one-batch test of 30 steps");
  }

  /**
   * Returns the findings of {@code checks} on {@link #DROPOUT_MODEL}, with one generator for the
   * weights, the dropout masks and the faces, as {@code kiln doctor} builds them.
   */
  private static List<Finding> examineWithSharedGenerator(Set<Check> checks, int overfitSteps) {
    Generator generator = new Generator(7);
    Sequential model = ModelSpec.parse(DROPOUT_MODEL, "test").build(DType.FLOAT32, generator);
    DoctorInput input =
        new DoctorInput(
            model,
            new Adam(model.parameters()),
            Losses.parse("l1"),
            faces("train-", 40, 1),
            UNCHANGED,
            faces("validation-", 12, 2),
            UNCHANGED,
            NORMALIZATION,
            DoctorInput.standardCollate(NORMALIZATION),
            generator,
            List.of(),
            DoctorOptions.defaults()
                .withChecks(checks)
                .withBatchSize(4)
                .withSteps(overfitSteps, 20));
    return Doctor.examine(input).findings();
  }

  /** Returns the range test's findings, whose codes start with {@code learning-rate}. */
  private static List<Finding> rangeFindings(List<Finding> findings) {
    return findings.stream().filter(finding -> finding.code().startsWith("learning-rate")).toList();
  }

  @Test
  void checksAloneMatchFullExamination() {
    List<Finding> all = examineWithSharedGenerator(EnumSet.allOf(Check.class), 10);
    List<Finding> overfit = examineWithSharedGenerator(EnumSet.of(Check.OVERFIT), 10);
    List<Finding> range = examineWithSharedGenerator(EnumSet.of(Check.LEARNING_RATE), 10);
    List<Finding> longerOverfit = examineWithSharedGenerator(EnumSet.allOf(Check.class), 40);

    assertEquals(1, rangeFindings(all).size(), "one range-test finding");
    assertEquals(find(overfit, "overfit"), find(all, "overfit"), "one-batch test");
    assertEquals(rangeFindings(range), rangeFindings(all), "range test");
    assertEquals(
        rangeFindings(all),
        rangeFindings(longerOverfit),
        "range test after a longer one-batch test");
  }

  /**
   * The baseline check switches the model to evaluation mode and back. That must not put a dropout
   * layer that was left in evaluation mode back into training mode before the modes check looks.
   */
  @Test
  void modesCheckSeesLayerModeAfterBaselines() {
    Sequential model = model(DROPOUT_MODEL);
    model.get(3).eval();
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults()
                .withChecks(EnumSet.of(Check.BASELINES, Check.MODES))
                .withBatchSize(4));

    List<String> codes = codes(Doctor.examine(input));

    assertTrue(codes.contains("mixed-modes"), codes.toString());
    assertFalse(model.get(3).isTraining(), "the dropout layer is still in evaluation mode");
  }

  /** Returns the index of the first value above 4 times the lowest value before it, or -1. */
  private static int firstAboveFourTimesLowest(double[] values) {
    double lowest = Double.POSITIVE_INFINITY;
    for (int i = 0; i < values.length; i++) {
      if (values[i] > 4 * lowest) {
        return i;
      }
      lowest = Math.min(lowest, values[i]);
    }
    return -1;
  }

  @Test
  void overfitEvidenceSaysDropoutIsOn() {
    Sequential model = model(DROPOUT_MODEL);
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()).learningRate(1e-3),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(3, 10));
    String training = find(OverfitCheck.run(Workbench.of(input)), "overfit").evidence();
    model.eval();
    String evaluation = find(OverfitCheck.run(Workbench.of(input)), "overfit").evidence();

    assertTrue(training.contains("dropout is on during this test"), training);
    assertFalse(evaluation.contains("dropout is on"), evaluation);
  }

  /**
   * With one step, the only loss below the first is the one after that step, which the test must
   * measure with a pass of its own.
   */
  @Test
  void overfitCountsTheLossAfterTheLastStep() {
    Sequential model = model(DROPOUT_MODEL);
    model.eval();
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()).learningRate(1e-2),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(1, 10));
    String evidence = find(OverfitCheck.run(Workbench.of(input)), "overfit").evidence();

    assertTrue(evidence.contains(" after the last of 1 step, "), evidence);
    assertTrue(evidence.contains("(lowest / first 0."), evidence);
  }

  /** A rate far too high makes the loss end above where it started, and the fix names the rate. */
  @Test
  void overfitRisingLossBlamesRate() {
    Sequential model = model(DROPOUT_MODEL);
    model.eval();
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()).learningRate(10),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(5, 10));
    Finding stuck = find(OverfitCheck.run(Workbench.of(input)), "overfit-one-batch");

    assertTrue(stuck.fix().startsWith("The loss ended above its first value"), stuck.fix());
  }

  /**
   * An optimizer whose every step ignores the gradients and sets the weights to 0 and the biases to
   * {@code bias} of the learning rate, so that after one step the model predicts that value for
   * every coordinate of every face.
   */
  private static final class ConstantOutputOptimizer extends Optimizer {
    private final DoubleUnaryOperator bias;

    ConstantOutputOptimizer(List<Tensor> parameters, DoubleUnaryOperator bias) {
      super(parameters, 1e-3);
      this.bias = bias;
    }

    @Override
    protected void update(int index, Tensor parameter, Tensor grad, Map<String, Tensor> state) {
      double value = parameter.dim() == 1 ? bias.applyAsDouble(learningRate()) : 0;
      parameter.copyFrom(Tensor.full(value, parameter.dtype(), parameter.shape()));
    }

    @Override
    protected List<String> stateNames() {
      return List.of();
    }
  }

  /**
   * A first loss far above the rest makes lowest / first small, yet a model that never beats the
   * batch's mean or median shape has memorized nothing. The targets lie in [-0.75, 0.75], so an
   * output bias of 10 starts the L1 loss near 10, and a constant 0.5 after the first step stays
   * above the loss of the mean and of the median shape.
   */
  @Test
  void overfitAboveConstantShapeFails() {
    Sequential model = model(LINEAR_MODEL);
    try (var _ = GradMode.noGrad()) {
      for (Tensor parameter : model.parameters()) {
        double value = parameter.dim() == 1 ? 10 : 0;
        parameter.copyFrom(Tensor.full(value, parameter.dtype(), parameter.shape()));
      }
    }
    DoctorInput input =
        input(
            model,
            new ConstantOutputOptimizer(model.parameters(), rate -> 0.5),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(5, 10));
    Finding stuck = find(OverfitCheck.run(Workbench.of(input)), "overfit-one-batch");

    assertEquals(Severity.CRITICAL, stuck.severity(), stuck.evidence());
    assertTrue(
        stuck.title().contains("the loss of always predicting the batch's mean or median shape"),
        stuck.title());
    assertTrue(stuck.evidence().contains("(lowest / first 0.0"), stuck.evidence());
  }

  /** Runs every check on {@code modelText} with short one-batch and range tests. */
  private static Report examineAll(String modelText) {
    Sequential model = model(modelText);
    DoctorInput input =
        input(
            model,
            new Adam(model.parameters()),
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(3, 10));
    return Doctor.examine(input);
  }

  private static List<String> codes(Report report) {
    return report.findings().stream().map(Finding::code).toList();
  }

  @Test
  void structureFlagsDropoutAfterOutput() {
    Report report = examineAll(DROPOUT_MODEL.replace("dropout 0.5\n", "") + "dropout 0.5\n");
    Finding dropout = find(report.findings(), "dropout-after-output");

    assertEquals(Severity.CRITICAL, dropout.severity());
    assertTrue(dropout.evidence().startsWith("layer 4 (Dropout, p 0.500)"), dropout.evidence());
    assertTrue(dropout.fix().startsWith("Move the dropout before the last linear"), dropout.fix());
  }

  @Test
  void structureFlagsOneOutputBottleneck() {
    Report report = examineAll(DROPOUT_MODEL.replace("dropout 0.5\n", "linear 1\nrelu\n"));
    Finding narrow = find(report.findings(), "narrow-hidden-layer");

    assertEquals(Severity.CRITICAL, narrow.severity());
    assertTrue(narrow.title().startsWith("Hidden layer 3 has only 1 output,"), narrow.title());
    assertTrue(narrow.fix().startsWith("Give layer 3 at least 10 outputs"), narrow.fix());
  }

  @Test
  void structureWarnsOfEightOutputLayer() {
    List<Finding> findings =
        StructureCheck.run(model(DROPOUT_MODEL.replace("linear 32", "linear 8")));

    assertEquals(Severity.WARNING, find(findings, "narrow-hidden-layer").severity());
  }

  @Test
  void structurePassesHiddenDropout() {
    List<String> codes = codes(examineAll(DROPOUT_MODEL));

    assertFalse(codes.contains("dropout-after-output"), codes.toString());
    assertFalse(codes.contains("narrow-hidden-layer"), codes.toString());
  }

  /** Runs the one-batch test with Adam at rate 0.01 and {@code weightDecay}. */
  private static List<Finding> overfitWithWeightDecay(double weightDecay) {
    Sequential model = model(DROPOUT_MODEL);
    Optimizer adam = new Adam(model.parameters()).learningRate(1e-2).weightDecay(weightDecay);
    DoctorInput input =
        input(
            model,
            adam,
            DoctorInput.standardCollate(NORMALIZATION),
            List.of(),
            DoctorOptions.defaults().withBatchSize(4).withSteps(20, 10));
    return OverfitCheck.run(Workbench.of(input));
  }

  @Test
  void overfitFlagsWeightDecayErasingWeights() {
    Finding decay = find(overfitWithWeightDecay(100), "weight-decay-too-high");

    assertEquals(Severity.CRITICAL, decay.severity());
    assertTrue(decay.title().startsWith("Weight decay 100 erases the weights"), decay.title());
    assertTrue(decay.evidence().contains("1.weight "), decay.evidence());
    assertTrue(decay.fix().startsWith("Lower the weight decay (--weight-decay)"), decay.fix());
  }

  @Test
  void overfitAcceptsSmallWeightDecay() {
    List<String> codes = overfitWithWeightDecay(1e-4).stream().map(Finding::code).toList();

    assertFalse(codes.contains("weight-decay-too-high"), codes.toString());
    assertTrue(codes.contains("weight-decay"), codes.toString());
  }

  @Test
  void initializationNamesBothReferenceDeviations() {
    Sequential model = model(DROPOUT_MODEL);
    String evidence = find(ModelCheck.initialization(model), "init").evidence();
    // The first linear layer has a fan-in of 16 * 16 = 256.
    String pytorch = "PyTorch default 1/sqrt(3 fan-in) = " + Stats.format(1 / Math.sqrt(3 * 256.0));
    String he = "He for ReLU sqrt(2/fan-in) = " + Stats.format(Math.sqrt(2 / 256.0));

    assertTrue(evidence.contains(pytorch), evidence);
    assertTrue(evidence.contains(he), evidence);
    assertTrue(evidence.endsWith("positive"), "no separator after the last layer: " + evidence);
  }

  @Test
  void updateRatiosEndWithoutSeparator() {
    Sequential model = model(DROPOUT_MODEL);
    DoctorInput input = input(model, new Adam(model.parameters()).learningRate(1e-3));
    String evidence = find(WiringCheck.run(Workbench.of(input)), "updates").evidence();

    assertTrue(evidence.contains("; "), "two layers or more: " + evidence);
    assertFalse(evidence.endsWith(";"), evidence);
  }

  @Test
  void pixelTargetsFindingExplainsSlowOutput() {
    Function<List<Sample>, Batch> pixels = DoctorCaseBookTest::pixelTargets;
    List<Sample> samples = faces("train-", 8, 1);
    List<Finding> findings =
        DataCheck.targets(List.of(pixels.apply(samples)), samples, NORMALIZATION.inputSize());
    String fix = find(findings, "targets-not-normalized").fix();

    assertTrue(fix.contains("Adam moves each weight by about the learning rate per step"), fix);
    assertTrue(fix.contains("the output bias alone would need about"), fix);
    assertTrue(fix.contains("the loss looks stuck"), fix);
    assertTrue(fix.contains("Map the keypoints to [-1, 1]"), fix);
  }

  @Test
  void deadReluFindingNamesBatchAndMechanism() {
    Sequential model = model(DROPOUT_MODEL);
    try (var _ = GradMode.noGrad()) {
      // The first bias that the model lists is the first linear layer's: pushing it far below 0
      // switches off every unit of the ReLU that follows.
      for (var entry : model.namedParameters().entrySet()) {
        if (entry.getValue().dim() == 1) {
          Tensor bias = entry.getValue();
          bias.copyFrom(Tensor.full(-100, bias.dtype(), bias.shape()));
          break;
        }
      }
    }
    Batch batch = DoctorInput.standardCollate(NORMALIZATION).apply(faces("train-", 4, 1));
    Finding dead = find(ActivationCheck.run(model, batch), "dead-relu");

    assertTrue(dead.title().contains("for every face of one 4-face batch"), dead.title());
    assertTrue(dead.fix().contains("gets zero gradient from those faces"), dead.fix());
  }

  /** The gradient norms that the student model with sigmoid hidden layers had at its start. */
  @Test
  void vanishedGradientsFlagsSigmoidStack() {
    Map<String, Double> norms =
        orderedNorms(
            "0.weight", 0.000319, "3.weight", 0.00716, "6.weight", 0.05, "16.weight", 1.43);

    Finding vanished = find(WiringCheck.vanishedGradients(norms), "vanishing-gradients");

    assertEquals(Severity.WARNING, vanished.severity());
    assertTrue(vanished.title().contains("at 1 layer it is below 0.1%"), vanished.title());
    assertTrue(
        vanished.evidence().contains("0.weight 0.000319; largest 1.43"), vanished.evidence());
    assertTrue(vanished.fix().contains("in place of sigmoid or tanh"), vanished.fix());
  }

  /** The default preset's norms, whose smallest is 9% of the largest, pass. */
  @Test
  void vanishedGradientsPassesDefaultModel() {
    Map<String, Double> norms =
        orderedNorms("0.weight", 0.103, "4.weight", 0.227, "22.weight", 1.20, "24.weight", 0.385);

    assertEquals(List.of(), WiringCheck.vanishedGradients(norms));
  }

  @Test
  void vanishedGradientsSkipsAllZero() {
    assertEquals(
        List.of(), WiringCheck.vanishedGradients(orderedNorms("0.weight", 0.0, "3.weight", 0.0)));
  }

  private static Map<String, Double> orderedNorms(Object... namesAndNorms) {
    Map<String, Double> norms = new LinkedHashMap<>();
    for (int i = 0; i < namesAndNorms.length; i += 2) {
      norms.put((String) namesAndNorms[i], (Double) namesAndNorms[i + 1]);
    }
    return norms;
  }

  @Test
  void tooHighRateFindingExplainsBouncingLoss() {
    Sequential model = model(DROPOUT_MODEL);
    DoctorInput input = input(model, new Adam(model.parameters()).learningRate(1));
    Finding high = find(WiringCheck.run(Workbench.of(input)), "learning-rate-too-high");

    assertTrue(high.fix().contains("overshoots the minimum"), high.fix());
    assertTrue(high.fix().contains("bounces around its starting value"), high.fix());
  }

  /** Returns the linear model with every weight and bias NaN, so that it predicts NaN. */
  private static Sequential nanModel() {
    Sequential model = model(LINEAR_MODEL);
    try (var _ = GradMode.noGrad()) {
      for (Tensor parameter : model.parameters()) {
        parameter.copyFrom(Tensor.full(Double.NaN, parameter.dtype(), parameter.shape()));
      }
    }
    return model;
  }

  /**
   * Predictions that are NaN before the first step are no learning rate's fault, so the range test
   * suggests no rate.
   */
  @Test
  void rangeTestSkipsNaNBeforeFirstStep() {
    Sequential model = nanModel();
    DoctorInput input = input(model, new Adam(model.parameters()));

    List<Finding> findings = LearningRateCheck.run(Workbench.of(input));

    assertEquals(List.of("learning-rate"), findings.stream().map(Finding::code).toList());
    Finding skipped = findings.get(0);
    assertEquals(Severity.INFO, skipped.severity());
    assertEquals("Learning-rate range test skipped.", skipped.title());
    assertTrue(skipped.evidence().contains("before the first step"), skipped.evidence());
  }

  /** A loss that is NaN before any step is not blamed on training or on the learning rate. */
  @Test
  void overfitNaNBeforeFirstStepBlamesModel() {
    Sequential model = nanModel();
    DoctorInput input = input(model, new Adam(model.parameters()));

    Finding nan = find(OverfitCheck.run(Workbench.of(input)), "overfit-diverged");

    assertEquals(Severity.CRITICAL, nan.severity());
    assertEquals("The loss on one batch is NaN before the first training step.", nan.title());
    assertFalse(nan.fix().contains("Lower the learning rate"), nan.fix());
  }

  /** A rate 4,000 times below the range test's suggestion gets a warning with both rates. */
  @Test
  void rangeTestFlagsRateFarBelowSuggestion() {
    double[] rates = {1e-6, 1e-5, 1e-4, 1e-3};
    double[] losses = {0.1, 0.09, 0.05, 0.4};
    LearningRateCheck check = new LearningRateCheck(rates, losses, losses, 4e-4, 1e-2);

    Finding low = find(check.findings(1e-7, "--lr", null), "learning-rate-too-low");

    assertEquals(Severity.WARNING, low.severity());
    assertTrue(low.title().startsWith("The learning rate 1.00e-07 is far too low"), low.title());
    assertTrue(low.title().contains("estimates about 0.000400, 4000 times higher"), low.title());
    assertTrue(low.fix().startsWith("Set the learning rate to about 0.000400."), low.fix());
  }

  /** A rate within a factor of 100 of the suggestion is within the test's own spread. */
  @Test
  void rangeTestAcceptsRateNearSuggestion() {
    double[] rates = {1e-6, 1e-5, 1e-4, 1e-3};
    double[] losses = {0.1, 0.09, 0.05, 0.04};
    LearningRateCheck check = new LearningRateCheck(rates, losses, losses, 0.05, Double.NaN);

    List<Finding> findings = check.findings(1e-3, "--lr", null);

    assertEquals(List.of("learning-rate"), findings.stream().map(Finding::code).toList());
  }

  /**
   * Checks that noise between batches at the start of a sweep does not outweigh a steady descent
   * later. The sweep has 100 steps over 6 decades. The loss alternates 15% up and down for 50
   * steps, then falls from 1.0 to 0.5 over the next 30 steps. Over 3 steps the noise falls 26% and
   * the descent at most 9%.
   */
  @Test
  void steepestDescentIgnoresEarlyNoise() {
    int steps = 100;
    double[] rates = new double[steps];
    double[] losses = new double[steps];
    for (int i = 0; i < steps; i++) {
      rates[i] = 1e-6 * Math.pow(1e6, i / (steps - 1.0));
      if (i < 50) {
        losses[i] = i % 2 == 0 ? 1.15 : 0.85;
      } else {
        losses[i] = Math.max(0.5, 1.0 - 0.5 * (i - 50) / 30.0);
      }
    }

    double steepest = LearningRateCheck.steepest(rates, losses);

    assertTrue(steepest > rates[50], "steepest " + steepest);
    assertTrue(steepest < rates[80], "steepest " + steepest);
  }

  /**
   * Returns a sweep's smoothed error over 100 rates from 1e-6 to 1: a fall from 1.0 to 0.4 around
   * step 40, then a spike to 0.9 around step 70 and the recovery to 0.4. Over a decade of steps the
   * recovery falls 55% and the descent 50%.
   */
  private static double[][] sweepWithSpike() {
    int steps = 100;
    double[] rates = new double[steps];
    double[] errors = new double[steps];
    for (int i = 0; i < steps; i++) {
      rates[i] = 1e-6 * Math.pow(1e6, i / (steps - 1.0));
      errors[i] = 0.7 - 0.3 * Math.tanh((i - 40) / 8.0) + 0.5 * Math.exp(-Math.pow(i - 70, 2) / 20);
    }
    return new double[][] {rates, errors};
  }

  /** A recovery after a spike reaches no new low, so it is not the steepest descent. */
  @Test
  void steepestDescentIgnoresRecoveryAfterSpike() {
    double[][] sweep = sweepWithSpike();
    double[] rates = sweep[0];

    double steepest = LearningRateCheck.steepest(rates, sweep[1]);

    assertTrue(steepest > rates[30], "steepest " + steepest);
    assertTrue(steepest < rates[50], "steepest " + steepest);
  }

  /**
   * An error and its square, as the l1 and the mse loss would measure it, fall fastest together.
   */
  @Test
  void steepestDescentSameForSquaredCurve() {
    double[][] sweep = sweepWithSpike();
    double[] rates = sweep[0];
    double[] errors = sweep[1];
    double[] squares = new double[errors.length];
    for (int i = 0; i < errors.length; i++) {
      squares[i] = errors[i] * errors[i];
    }

    assertEquals(
        LearningRateCheck.steepest(rates, errors),
        LearningRateCheck.steepest(rates, squares),
        "steepest of the square");
  }
}
