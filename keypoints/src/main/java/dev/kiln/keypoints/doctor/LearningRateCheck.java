package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.plot.LinePlot;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.nn.optim.Optimizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A learning-rate range test: from a copy of the weights, the learning rate grows exponentially
 * from {@link #LOWEST} to {@link #HIGHEST} over the steps while the loss and the prediction error
 * are recorded. The error falls fastest at a good rate and blows up past the largest usable one.
 *
 * <p>The steepest descent and the divergence are judged on the mean absolute error of the
 * predictions in normalized target units, not on the loss. That error grows linearly with the
 * distance from the targets whatever the loss, so the 4x rule means the same for every loss. On the
 * loss itself, an MSE loss reaches 4 times its lowest value when the errors have only doubled, and
 * an L1 loss when they have grown fourfold. For the l1 loss the error equals the loss.
 *
 * @param rates the learning rate of each step taken
 * @param losses the smoothed loss after each step: {@code losses[i]} is measured on the next batch
 *     after the step at {@code rates[i]}
 * @param errors the smoothed mean absolute error of the predictions, in normalized target units,
 *     measured by the same forward passes as {@code losses}
 * @param steepest the rate at which the smoothed error fell fastest to new lows
 * @param divergence the rate of the first step after which the smoothed error exceeded 4 times its
 *     lowest value or was not a number, or NaN when no step did
 *     <p>NOTE: a short sweep can miss the divergence: with 40 steps, an L1 loss and batch norm the
 *     loss did not diverge even at a rate of 1. {@link WiringCheck}'s update ratios decide whether
 *     the configured rate is too high.
 */
public record LearningRateCheck(
    double[] rates, double[] losses, double[] errors, double steepest, double divergence) {
  private static final Logger LOG = LoggerFactory.getLogger(LearningRateCheck.class);

  /** Learning rate of the first step. */
  public static final double LOWEST = 1e-6;

  /** Learning rate of the last step. */
  public static final double HIGHEST = 1;

  /**
   * Factor by which the configured rate must lie below the suggested rate to be flagged as too low.
   * The suggestion is rough. In sweeps of 100 steps on the faces of kiln doctor --limit 300 with
   * Adam, the default preset got 1.15e-4 with each of the l1, smoothl1, mse and wing losses, and
   * lenet-20m got 1.75e-4 with l1. Other models may lie outside that range, so only a gap far wider
   * than it shows that the rate is too low.
   */
  static final double TOO_LOW_FACTOR = 100;

  /** Weight of the previous value in the exponential smoothing of the loss. */
  private static final double SMOOTHING = 0.7;

  /** Returns the suggested rate: a tenth of the divergence point, or the steepest descent. */
  public double suggested() {
    return Double.isNaN(divergence) ? steepest : Math.min(steepest, divergence / 10);
  }

  /** Runs the test on the workbench's training batches, then restores the model and optimizer. */
  static LearningRateCheck measure(Workbench bench) {
    DoctorInput input = bench.input();
    ModelState state = ModelState.capture(input.model(), input.optimizer());
    try {
      return sweep(input, bench.trainBatches(), input.options().rangeSteps());
    } finally {
      state.restore();
    }
  }

  /**
   * Takes {@code steps} optimizer steps at growing rates. The loss that a step at {@code rates[i]}
   * produced is measured by the next forward pass, on the next batch, so that pass's smoothed loss
   * and error are stored at index {@code i}. The sweep thus runs one forward pass more than it
   * takes steps.
   */
  private static LearningRateCheck sweep(DoctorInput input, List<Batch> batches, int steps) {
    Optimizer optimizer = input.optimizer();
    double growth = Math.pow(HIGHEST / LOWEST, 1.0 / (steps - 1));
    double[] rates = new double[steps];
    double[] losses = new double[steps];
    double[] errors = new double[steps];
    double averageLoss = 0;
    double averageError = 0;
    double lowest = Double.POSITIVE_INFINITY;
    double divergence = Double.NaN;
    int stepsTaken = 0;

    for (int pass = 0; pass <= steps; pass++) {
      DeadlineReached.check(input.options());
      Batch batch = batches.get(pass % batches.size());
      optimizer.zeroGrad();
      Tensor prediction = input.model().forward(batch.images());
      Tensor loss = input.loss().compute(prediction, batch.targets());
      averageLoss = SMOOTHING * averageLoss + (1 - SMOOTHING) * loss.item();
      averageError =
          SMOOTHING * averageError + (1 - SMOOTHING) * meanAbsoluteError(prediction, batch);
      // Dividing by 1 - SMOOTHING^n removes the pull towards the starting value 0 of the average,
      // the bias correction of Adam's m-hat.
      double correction = 1 - Math.pow(SMOOTHING, pass + 1);
      double error = averageError / correction;
      if (pass == 0 && !Double.isFinite(error)) {
        // No rate has been applied yet, so a sweep would blame the first, tiny rate.
        throw new IllegalStateException(
            "the predictions on the first batch are "
                + error
                + " before the first step, so no learning rate is to blame. Find the layer whose"
                + " output is not finite.");
      }
      if (pass > 0) {
        int step = pass - 1;
        losses[step] = averageLoss / correction;
        errors[step] = error;
        if (!Double.isFinite(error) || (step >= 2 && error > 4 * lowest)) {
          divergence = rates[step];
          break;
        }
      }
      lowest = Math.min(lowest, error);
      if (pass == steps) {
        break;
      }

      double rate = LOWEST * Math.pow(growth, pass);
      loss.backward();
      optimizer.setLearningRate(rate);
      optimizer.step();
      rates[pass] = rate;
      stepsTaken = pass + 1;
    }
    rates = Arrays.copyOf(rates, stepsTaken);
    losses = Arrays.copyOf(losses, stepsTaken);
    errors = Arrays.copyOf(errors, stepsTaken);
    return new LearningRateCheck(rates, losses, errors, steepest(rates, errors), divergence);
  }

  /** Returns the mean absolute difference between the prediction and the batch's targets. */
  private static double meanAbsoluteError(Tensor prediction, Batch batch) {
    try (var _ = GradMode.noGrad()) {
      return prediction.detach().sub(batch.targets()).abs().mean().item();
    }
  }

  /**
   * Returns the rate in the middle of the steepest relative fall of the running minimum of {@code
   * values}, a smoothed curve such as the sweep's errors, over a span of steps. The span is the
   * steps of one decade of rates, at least 3. Over 3 steps only, the noise between batches at the
   * tiny rates of the sweep's start looked steeper than the real descent, so the suggestion came
   * out near the lowest rate. The running minimum counts only falls to new lows. On the curve
   * itself, the recovery after a spike that stayed under the divergence threshold looked like the
   * steepest descent: a LeNet-like model with a tanh output got 0.19, a rate at which it did not
   * learn at all. Raising the values to a positive power keeps the order of their ratios, so it
   * returns the same rate for an error and for its square.
   */
  static double steepest(double[] rates, double[] values) {
    int span = 3;
    if (rates.length >= 2 && rates[1] > rates[0]) {
      span = Math.max(span, (int) Math.round(Math.log(10) / Math.log(rates[1] / rates[0])));
    }
    double[] lows = new double[values.length];
    double best = 0;
    double rate = rates[rates.length / 2];
    for (int i = 0; i < values.length; i++) {
      if (!Double.isFinite(values[i])) {
        break;
      }
      lows[i] = i == 0 ? values[i] : Math.min(lows[i - 1], values[i]);
      if (i < span) {
        continue;
      }
      double slope = (lows[i] - lows[i - span]) / lows[i - span];
      if (slope < best) {
        best = slope;
        rate = rates[i - span / 2];
      }
    }
    return rate;
  }

  /** Runs the test and returns its findings, with a plot when the options name a folder. */
  static List<Finding> run(Workbench bench) {
    LearningRateCheck result;
    try {
      result = measure(bench);
    } catch (IllegalStateException e) {
      // The optimizer cannot step, or the model predicts NaN or infinity before any step. The
      // wiring, activation and one-batch checks report those.
      return List.of(
          Finding.info("learning-rate", "Learning-rate range test skipped.", e.getMessage()));
    }
    DoctorOptions options = bench.input().options();
    Path png = result.plot(options.output());
    return result.findings(
        bench.input().optimizer().learningRate(), options.learningRateSource(), png);
  }

  /** Writes the loss and the error against the learning rate to {@code folder}, or returns null. */
  Path plot(Path folder) {
    if (folder == null || rates.length < 2) {
      return null;
    }
    double[] logRates = new double[rates.length];
    for (int i = 0; i < rates.length; i++) {
      logRates[i] = Math.log10(rates[i]);
    }
    LinePlot plot =
        new LinePlot("Learning-rate range test")
            .xLabel("log10(learning rate)")
            .yLabel("smoothed value");
    addFinite(plot, "loss", logRates, losses);
    addFinite(plot, "mean absolute error", logRates, errors);
    Path png = folder.resolve("doctor-lr-range.png");
    try {
      plot.writePng(png, 800, 500);
      return png;
    } catch (IOException e) {
      LOG.warn("could not write the learning-rate plot {}: {}", png, e.toString());
      return null;
    }
  }

  /** Adds the points of {@code y} that are finite, with their {@code x}, as a line. */
  private static void addFinite(LinePlot plot, String name, double[] x, double[] y) {
    List<Double> keptX = new ArrayList<>();
    List<Double> keptY = new ArrayList<>();
    for (int i = 0; i < y.length; i++) {
      if (Double.isFinite(y[i])) {
        keptX.add(x[i]);
        keptY.add(y[i]);
      }
    }
    plot.add(
        name,
        keptX.stream().mapToDouble(Double::doubleValue).toArray(),
        keptY.stream().mapToDouble(Double::doubleValue).toArray());
  }

  /**
   * Returns the findings for a run whose learning rate is {@code configured}. The evidence names
   * {@code source} beside the rate, because a run's optimizer may hold a rate that its schedule
   * lowered rather than the rate it was started with.
   */
  public List<Finding> findings(double configured, String source, Path png) {
    double suggestion = suggested();
    String evidence =
        "range test over "
            + rates.length
            + " steps from "
            + Stats.format(LOWEST)
            + " to "
            + Stats.format(rates[rates.length - 1])
            + ": steepest descent at "
            + Stats.format(steepest)
            + ", "
            + (Double.isNaN(divergence)
                ? "no divergence"
                : "divergence at " + Stats.format(divergence))
            + "; learning rate "
            + Stats.format(configured)
            + " ("
            + source
            + ")";
    if (!Double.isNaN(divergence) && configured >= divergence / 3) {
      return List.of(
          new Finding(
              Severity.CRITICAL,
              "learning-rate-diverges",
              Finding.MEASURED,
              "The learning rate "
                  + Stats.format(configured)
                  + " is too high: the prediction error starts to blow up at "
                  + Stats.format(divergence)
                  + ".",
              evidence,
              "Set the learning rate to about " + Stats.format(suggestion) + ".",
              png));
    }
    if (configured * TOO_LOW_FACTOR < suggestion) {
      return List.of(
          new Finding(
              Severity.WARNING,
              "learning-rate-too-low",
              Finding.MEASURED,
              "The learning rate "
                  + Stats.format(configured)
                  + " is far too low: the range test estimates about "
                  + Stats.format(suggestion)
                  + ", "
                  + Math.round(suggestion / configured)
                  + " times higher.",
              evidence,
              "Set the learning rate to about "
                  + Stats.format(suggestion)
                  + ". At the configured rate each step moves the weights so little that the"
                  + " loss barely falls.",
              png));
    }
    return List.of(
        new Finding(
            Severity.INFO,
            "learning-rate",
            Finding.MEASURED,
            "Learning-rate range test: it estimates about " + Stats.format(suggestion) + ".",
            evidence,
            "",
            png));
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof LearningRateCheck o
        && Arrays.equals(rates, o.rates)
        && Arrays.equals(losses, o.losses)
        && Arrays.equals(errors, o.errors)
        && Double.compare(steepest, o.steepest) == 0
        && Double.compare(divergence, o.divergence) == 0;
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(rates) + Arrays.hashCode(losses)) + Arrays.hashCode(errors);
  }

  @Override
  public String toString() {
    return "LearningRateCheck[steps="
        + rates.length
        + ", steepest="
        + steepest
        + ", divergence="
        + divergence
        + "]";
  }
}
