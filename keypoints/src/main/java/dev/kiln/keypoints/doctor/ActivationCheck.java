package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.layers.Sigmoid;
import dev.kiln.nn.layers.Tanh;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a batch through the model's layers one at a time and measures each layer's output: the share
 * of dead ReLU units, the saturation of Tanh and Sigmoid, and the spread of the activations.
 */
public final class ActivationCheck {
  /** Share of dead units in a ReLU layer above which it is flagged. */
  static final double DEAD_SHARE = 0.5;

  /** Share of saturated Tanh or Sigmoid outputs above which the layer is flagged. */
  static final double SATURATED_SHARE = 0.3;

  /** Activation spread above which a layer counts as exploding. */
  static final double EXPLODING_STD = 100;

  /** Activation spread below which a layer counts as vanishing. */
  static final double VANISHING_STD = 1e-3;

  private ActivationCheck() {}

  /** Runs the check on the model's current mode, then restores its weights and statistics. */
  public static List<Finding> run(Sequential model, Batch batch) {
    ModelState state = ModelState.capture(model, null);
    try (var _ = GradMode.noGrad()) {
      return examine(model, batch);
    } finally {
      state.restore();
    }
  }

  private static List<Finding> examine(Sequential model, Batch batch) {
    int last = ModelCheck.lastWeightLayer(model);
    List<String> dead = new ArrayList<>();
    List<String> saturated = new ArrayList<>();
    List<String> exploding = new ArrayList<>();
    List<String> vanishing = new ArrayList<>();
    StringBuilder spread = new StringBuilder("output std per layer: input ");
    Tensor x = batch.images();
    double inputStd = Stats.of(x.toFloatArray()).std();
    spread.append(Stats.format(inputStd));
    for (int i = 0; i < model.size(); i++) {
      Module layer = model.get(i);
      x = layer.forward(x);
      float[] values = x.toFloatArray();
      Stats stats = Stats.of(values);
      String name = i + " " + layer.getClass().getSimpleName();
      spread.append(", ").append(name).append(' ').append(Stats.format(stats.std()));
      if (layer instanceof ReLU && i < last) {
        double share = deadShare(x);
        if (share > DEAD_SHARE) {
          dead.add(name + " " + Stats.percent(share));
        }
      } else if (layer instanceof Tanh || layer instanceof Sigmoid) {
        double low = layer instanceof Tanh ? -0.99 : 0.01;
        double high = 0.99;
        long count = 0;
        for (float v : values) {
          if (v < low || v > high) {
            count++;
          }
        }
        double share = (double) count / values.length;
        if (share > SATURATED_SHARE) {
          saturated.add(name + " " + Stats.percent(share));
        }
      }
      if (stats.std() > EXPLODING_STD) {
        exploding.add(name + " " + Stats.format(stats.std()));
      } else if (stats.std() < VANISHING_STD && inputStd >= 10 * VANISHING_STD) {
        vanishing.add(name + " " + Stats.format(stats.std()));
      }
    }
    String evidence = spread.toString();
    List<Finding> findings = new ArrayList<>();
    if (!exploding.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "activations-exploding",
              Finding.MEASURED,
              "The activations grow through the network: "
                  + "the outputs of "
                  + Stats.count(exploding.size(), "layer")
                  + " have a spread above "
                  + Stats.format(EXPLODING_STD)
                  + ".",
              evidence,
              "Initialize the weights with a standard deviation of about sqrt(2/fan-in) before"
                  + " ReLU (He, kaiming_normal) or sqrt(1/fan-in) elsewhere (LeCun; Xavier's"
                  + " sqrt(2/(fan-in + fan-out)) is close), and check the input scale.",
              null));
    }
    if (!vanishing.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "activations-vanishing",
              Finding.MEASURED,
              "The activations fade through the network: "
                  + "the outputs of "
                  + Stats.count(vanishing.size(), "layer")
                  + " have a spread below "
                  + Stats.format(VANISHING_STD)
                  + ".",
              evidence,
              "Initialize the weights with a standard deviation of about sqrt(2/fan-in) before"
                  + " ReLU (He, kaiming_normal), which keeps the activations' variance from layer"
                  + " to layer, or add batch norm.",
              null));
    }
    if (!dead.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "dead-relu",
              Finding.MEASURED,
              "Over half of the units of "
                  + Stats.count(dead.size(), "ReLU layer")
                  + " output 0 for every face of one "
                  + batch.size()
                  + "-face batch.",
              "dead units: " + String.join(", ", dead),
              "A unit whose input is negative for every face gets zero gradient from those"
                  + " faces, and one that stays negative for all inputs stops learning. Lower the"
                  + " learning rate, initialize with kaiming_uniform, or use leaky_relu.",
              null));
    }
    if (!saturated.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "saturated-activations",
              Finding.MEASURED,
              "The outputs of "
                  + Stats.count(saturated.size(), "Tanh or Sigmoid layer")
                  + " are saturated, so their gradients vanish.",
              "saturated outputs: " + String.join(", ", saturated),
              "Scale the inputs to about unit spread, or use xavier init before Tanh and Sigmoid.",
              null));
    }
    findings.add(Finding.info("activations", "Activation spread per layer.", evidence));
    return findings;
  }

  /**
   * Returns the share of units (channels or features) that are 0 or below for every face of the
   * batch.
   */
  static double deadShare(Tensor output) {
    int faces = output.size(0);
    int units = output.size(1);
    int perUnit = output.numel() / (faces * units);
    float[] values = output.toFloatArray();
    int dead = 0;
    for (int u = 0; u < units; u++) {
      boolean alive = false;
      for (int n = 0; n < faces && !alive; n++) {
        int start = (n * units + u) * perUnit;
        for (int k = start; k < start + perUnit; k++) {
          if (values[k] > 0) {
            alive = true;
            break;
          }
        }
      }
      if (!alive) {
        dead++;
      }
    }
    return (double) dead / units;
  }
}
