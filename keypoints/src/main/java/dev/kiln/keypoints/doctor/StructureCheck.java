package dev.kiln.keypoints.doctor;

import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.layers.Linear;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks of the model's layer list that need no data and no training: dropout after the output
 * layer, and hidden linear layers too narrow to carry a face shape.
 */
public final class StructureCheck {
  /**
   * Minimum number of outputs of a hidden linear layer that passes without a finding. Every
   * prediction is a function of that layer's outputs, so the predictions lie on a set of at most
   * that many dimensions. On the 3,165 faces of training_frames_keypoints.csv after the evaluation
   * chain (rescale to 110, centre crop 96, map to [-1, 1]), the first 10 principal components of
   * the 136 target coordinates explain 99.1% of their variance, measured with numpy. The training
   * chain's random rotation, scaling and crop add variation on top.
   */
  static final int NARROW_FEATURES = 10;

  /**
   * Outputs below which a hidden linear layer is a critical finding. On the same faces the first 3
   * principal components explain 84.9% of the variance and the first 1 only 41.9%, so the best flat
   * set of that dimension leaves at least 15% of the mean-shape baseline's MSE unexplained.
   */
  static final int CRITICAL_FEATURES = 4;

  private StructureCheck() {}

  /** Returns the findings about dropout after the output and narrow hidden linear layers. */
  public static List<Finding> run(Sequential model) {
    List<Finding> findings = new ArrayList<>();
    findings.addAll(dropoutAfterOutput(model));
    findings.addAll(narrowHiddenLayers(model));
    return findings;
  }

  /**
   * Flags dropout after the last linear layer. In training it sets a share p of the predicted
   * coordinates to 0 and scales the others by 1 / (1 - p), so the loss of every step includes
   * predictions that no weight can move to their targets.
   */
  static List<Finding> dropoutAfterOutput(Sequential model) {
    int output = ModelCheck.lastWeightLayer(model);
    List<Finding> findings = new ArrayList<>();
    if (output < 0) {
      return findings;
    }
    for (int i = output + 1; i < model.size(); i++) {
      if (!(model.get(i) instanceof Dropout dropout) || dropout.p() == 0) {
        continue;
      }
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "dropout-after-output",
              Finding.CAUSE,
              "Dropout after the output layer sets "
                  + Stats.percent(dropout.p())
                  + " of the predicted coordinates to 0 in every training step, so the model"
                  + " cannot fit the targets.",
              "layer "
                  + i
                  + " (Dropout, p "
                  + Stats.format(dropout.p())
                  + ") comes after layer "
                  + output
                  + " ("
                  + describe(model.get(output))
                  + "), the last layer with weights",
              "Move the dropout before the last linear layer, or remove it: dropout belongs"
                  + " between hidden layers, never on the predictions.",
              null));
    }
    return findings;
  }

  /** Flags each linear layer before the output layer with fewer than {@link #NARROW_FEATURES}. */
  static List<Finding> narrowHiddenLayers(Sequential model) {
    int output = ModelCheck.lastWeightLayer(model);
    List<Finding> findings = new ArrayList<>();
    for (int i = 0; i < output; i++) {
      if (!(model.get(i) instanceof Linear linear)) {
        continue;
      }
      int features = outFeatures(linear);
      if (features >= NARROW_FEATURES) {
        continue;
      }
      findings.add(
          new Finding(
              features < CRITICAL_FEATURES ? Severity.CRITICAL : Severity.WARNING,
              "narrow-hidden-layer",
              Finding.CAUSE,
              "Hidden layer "
                  + i
                  + " has only "
                  + Stats.count(features, "output")
                  + ", so the predictions vary along at most "
                  + Stats.count(features, "dimension")
                  + ", and face shapes need about "
                  + NARROW_FEATURES
                  + ".",
              "layer "
                  + i
                  + " ("
                  + describe(linear)
                  + ") comes before the output layer "
                  + output
                  + "; on the dataset's training faces, 10 principal components explain 99.1% of"
                  + " the target coordinates' variance, 3 explain 84.9% and 1 explains 41.9%",
              "Give layer "
                  + i
                  + " at least "
                  + NARROW_FEATURES
                  + " outputs; the hidden linear layers of kiln's presets have 256 to 4096.",
              null));
    }
    return findings;
  }

  private static String describe(Module layer) {
    return layer instanceof Linear linear
        ? "Linear, " + Stats.count(outFeatures(linear), "output")
        : layer.getClass().getSimpleName();
  }

  /** Returns the output count of {@code linear}: the rows of its [out, in] weight. */
  private static int outFeatures(Linear linear) {
    return linear.weight().shape()[0];
  }
}
