package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.layers.BatchNorm;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.layers.ELU;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.layers.Sigmoid;
import dev.kiln.nn.layers.Tanh;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks of the model's structure and state: the activation after the output layer, the modes of
 * dropout and batch norm, and the spread of the current weights against the standard deviations of
 * the common inits. The weights are the initial ones only for a model that has not trained.
 */
public final class ModelCheck {
  /** Share of targets that an output activation cannot produce above which it is flagged. */
  static final double UNREACHABLE_SHARE = 0.05;

  /** Smallest weight count for which the sign balance of a layer is judged. */
  static final int SIGN_CHECK_MIN_WEIGHTS = 64;

  /**
   * Multiple of 1/sqrt(fan-in) above which a layer's weight standard deviation counts as too wide.
   * 1/sqrt(fan-in) is the bound of PyTorch's default uniform init, whose standard deviation is
   * 1/sqrt(3 fan-in), so the limit is about 8.7 times that default and 3.5 times He's
   * sqrt(2/fan-in). The margin is wide on purpose, so that a layer whose weights training has
   * spread somewhat wider than its init is not flagged.
   */
  static final double WIDE_FACTOR = 5;

  /**
   * Multiple of 1/sqrt(fan-in) below which a layer's weight standard deviation counts as too
   * narrow: about 1.7% of PyTorch's default and 0.7% of He's.
   */
  static final double NARROW_FACTOR = 0.01;

  private ModelCheck() {}

  /** Returns the index of the last Linear or Conv2d layer, or -1 when there is none. */
  static int lastWeightLayer(Sequential model) {
    for (int i = model.size() - 1; i >= 0; i--) {
      if (model.get(i) instanceof Linear || model.get(i) instanceof Conv2d) {
        return i;
      }
    }
    return -1;
  }

  /** Checks each activation after the last linear layer against the range of the targets. */
  public static List<Finding> outputLayer(Sequential model, List<Batch> batches) {
    List<float[]> parts = new ArrayList<>();
    for (Batch batch : batches) {
      parts.add(batch.targets().toFloatArray());
    }
    float[] targets = DataCheck.concat(parts);
    Stats stats = Stats.of(targets);
    List<Finding> findings = new ArrayList<>();
    for (int i = lastWeightLayer(model) + 1; i < model.size(); i++) {
      Module layer = model.get(i);
      String name = layer.getClass().getSimpleName();
      double low;
      double high;
      if (layer instanceof ReLU) {
        low = 0;
        high = Double.POSITIVE_INFINITY;
      } else if (layer instanceof Sigmoid) {
        low = 0;
        high = 1;
      } else if (layer instanceof Tanh) {
        low = -1;
        high = 1;
      } else if (layer instanceof ELU) {
        low = -1;
        high = Double.POSITIVE_INFINITY;
      } else {
        continue;
      }
      long unreachable = 0;
      for (float t : targets) {
        if (t < low || t > high) {
          unreachable++;
        }
      }
      double share = (double) unreachable / targets.length;
      String evidence =
          "layer "
              + i
              + " ("
              + name
              + ") outputs values in ["
              + Stats.format(low)
              + ", "
              + Stats.format(high)
              + "]; targets: "
              + stats
              + "; "
              + Stats.percent(share)
              + " of the targets are outside that range";
      if (share > UNREACHABLE_SHARE) {
        findings.add(
            new Finding(
                Severity.CRITICAL,
                "output-activation",
                Finding.CAUSE,
                "The output layer ends in "
                    + name
                    + ", which cannot produce "
                    + Stats.percent(share)
                    + " of the targets.",
                evidence,
                "Remove the "
                    + name
                    + " after the last linear layer: a regression output must be able to take any"
                    + " value the targets take.",
                null));
      } else {
        findings.add(Finding.info("output-activation", "Output activation.", evidence));
      }
    }
    return findings;
  }

  /**
   * Checks the modes of dropout and batch norm: all of them should follow the model's mode, the
   * model should be in training mode for training, and evaluation mode should be deterministic.
   */
  public static List<Finding> modes(Sequential model, Batch batch) {
    List<Module> modules = ModelState.modules(model);
    List<String> differing = new ArrayList<>();
    boolean hasRandomOrStats = false;
    for (Module module : modules) {
      if (module instanceof Dropout || module instanceof BatchNorm) {
        hasRandomOrStats = true;
        if (module.isTraining() != model.isTraining()) {
          differing.add(module.getClass().getSimpleName());
        }
      }
    }
    List<Finding> findings = new ArrayList<>();
    String mode = model.isTraining() ? "training" : "evaluation";
    if (!model.isTraining() && hasRandomOrStats) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "model-in-eval-mode",
              Finding.CAUSE,
              "The model is in evaluation mode while it trains, so dropout is off and batch norm"
                  + " uses its running statistics.",
              "model.isTraining() is false",
              "Call model.train() before each training epoch and model.eval() only around"
                  + " validation.",
              null));
    }
    if (!differing.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "mixed-modes",
              Finding.CAUSE,
              "In "
                  + Stats.count(differing.size(), "dropout or batch norm layer")
                  + ", the mode differs from the model's "
                  + mode
                  + " mode.",
              "layers in the other mode: " + String.join(", ", differing),
              "Switch modes on the whole model with model.train() and model.eval(), not on single"
                  + " layers.",
              null));
    }
    ModelState state = ModelState.capture(model, null);
    try (var _ = GradMode.noGrad()) {
      model.eval();
      float[] first = model.forward(batch.images()).toFloatArray();
      float[] second = model.forward(batch.images()).toFloatArray();
      double difference = 0;
      for (int i = 0; i < first.length; i++) {
        difference = Math.max(difference, Math.abs(first[i] - second[i]));
      }
      if (difference > 0) {
        findings.add(
            new Finding(
                Severity.CRITICAL,
                "random-in-eval-mode",
                Finding.CAUSE,
                "In evaluation mode the model gives different outputs for the same batch, so"
                    + " something random, such as dropout, stays on while validating.",
                "largest difference between two evaluation passes: " + Stats.format(difference),
                "Make every layer check its training flag, and call model.eval() before"
                    + " validation.",
                null));
      }
    } finally {
      state.restore();
    }
    return findings;
  }

  /**
   * Compares the current weights of each parameter of two or more dimensions, the weights of Linear
   * and Conv2d, with two reference standard deviations for its fan-in. PyTorch's default init gives
   * 1/sqrt(3 fan-in), and He's init gives sqrt(2/fan-in), which keeps the activations' variance
   * through ReLU layers.
   */
  public static List<Finding> initialization(Sequential model) {
    List<String> oneSigned = new ArrayList<>();
    List<String> tooWide = new ArrayList<>();
    List<String> tooNarrow = new ArrayList<>();
    List<String> table = new ArrayList<>();
    for (var entry : model.namedParameters().entrySet()) {
      Tensor weight = entry.getValue();
      if (weight.dim() < 2) {
        continue;
      }
      float[] values = weight.toFloatArray();
      Stats stats = Stats.of(values);
      int fanIn = Init.fanIn(weight);
      double bound = 1 / Math.sqrt(fanIn);
      double pytorchStd = 1 / Math.sqrt(3.0 * fanIn);
      double heStd = Math.sqrt(2.0 / fanIn);
      long positive = 0;
      for (float v : values) {
        if (v > 0) {
          positive++;
        }
      }
      double positiveShare = (double) positive / values.length;
      String line =
          entry.getKey()
              + ": mean "
              + Stats.format(stats.mean())
              + ", std "
              + Stats.format(stats.std())
              + " (PyTorch default 1/sqrt(3 fan-in) = "
              + Stats.format(pytorchStd)
              + ", He for ReLU sqrt(2/fan-in) = "
              + Stats.format(heStd)
              + "), "
              + Stats.percent(positiveShare)
              + " positive";
      table.add(line);
      if (values.length >= SIGN_CHECK_MIN_WEIGHTS && (positiveShare > 0.9 || positiveShare < 0.1)) {
        oneSigned.add(line);
      } else if (stats.std() > WIDE_FACTOR * bound) {
        tooWide.add(line);
      } else if (stats.std() < NARROW_FACTOR * bound) {
        tooNarrow.add(line);
      }
    }
    List<Finding> findings = new ArrayList<>();
    if (!oneSigned.isEmpty()) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "init-one-signed",
              Finding.CAUSE,
              "The weights of "
                  + Stats.count(oneSigned.size(), "layer")
                  + " are almost all of one sign, as from uniform(0, 1), so every unit"
                  + " adds up its inputs and the activations grow layer by layer.",
              String.join("; ", oneSigned),
              "Initialize weights centred on 0 with a standard deviation near sqrt(2/fan-in) (He,"
                  + " for ReLU) or 1/sqrt(3 fan-in) (PyTorch's default): keep the layers' default"
                  + " init, or use xavier_uniform or kaiming_uniform.",
              null));
    }
    if (!tooWide.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "init-too-wide",
              Finding.CAUSE,
              "The weights of "
                  + Stats.count(tooWide.size(), "layer")
                  + " have a standard deviation above 5/sqrt(fan-in), 3.5 times He's"
                  + " sqrt(2/fan-in).",
              String.join("; ", tooWide),
              "Use the default init, xavier_uniform or kaiming_uniform.",
              null));
    }
    if (!tooNarrow.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "init-too-narrow",
              Finding.CAUSE,
              "The weights of "
                  + Stats.count(tooNarrow.size(), "layer")
                  + " have a standard deviation below 0.01/sqrt(fan-in), under 1% of He's"
                  + " sqrt(2/fan-in).",
              String.join("; ", tooNarrow),
              "Use the default init, xavier_uniform or kaiming_uniform.",
              null));
    }
    findings.add(Finding.info("init", "Weights per layer.", String.join("; ", table)));
    return findings;
  }
}
