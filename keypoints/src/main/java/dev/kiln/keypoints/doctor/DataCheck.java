package dev.kiln.keypoints.doctor;

import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.eval.Nme;
import dev.kiln.keypoints.plot.KeypointOverlay;
import dev.kiln.keypoints.train.Batch;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Examines the data as the model sees it: the input pixels, the targets, a contact sheet of the
 * transformed training faces and the left/right order of the eye corners.
 */
public final class DataCheck {
  private static final Logger LOG = LoggerFactory.getLogger(DataCheck.class);

  /** Largest pixel value below which the images count as nearly black. */
  static final double DARK_MAX = 0.05;

  /** Share of targets beyond ±1 above which the targets count as not normalized. */
  static final double UNNORMALIZED_SHARE = 0.5;

  /** Share of faces with point 36 right of point 45 above which a flip lacks its index swap. */
  static final double SWAPPED_EYES_SHARE = 0.25;

  private static final int SHEET_FACES = 12;

  private DataCheck() {}

  /** Runs the data checks on the workbench's training faces. */
  static List<Finding> run(Workbench bench) {
    List<Finding> findings = new ArrayList<>();
    findings.addAll(inputs(bench.trainBatches()));
    findings.addAll(
        targets(
            bench.trainBatches(), bench.trainSamples(), bench.input().normalization().inputSize()));
    findings.addAll(leftRight(bench.trainSamples(), bench.input().options().output()));
    return findings;
  }

  /** Checks the range and spread of the input pixels. */
  public static List<Finding> inputs(List<Batch> batches) {
    List<float[]> images = new ArrayList<>();
    for (Batch batch : batches) {
      images.add(batch.images().toFloatArray());
    }
    Stats pixels = Stats.of(concat(images));
    String evidence = "input pixels over " + faces(batches) + " transformed faces: " + pixels;
    List<Finding> findings = new ArrayList<>();
    if (pixels.max() <= DARK_MAX && pixels.max() > 0) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "input-scaled-twice",
              Finding.CAUSE,
              "The input images are nearly black: no pixel is above "
                  + Stats.format(pixels.max())
                  + ", so they were probably divided by 255 twice.",
              evidence,
              "kiln's loader already returns pixels in [0, 1]. Remove the extra division by 255"
                  + " from your transform, so that the network sees values up to about 1.",
              null));
    } else if (pixels.std() < 1e-6) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "input-constant",
              Finding.CAUSE,
              "Every input pixel has the same value " + Stats.format(pixels.mean()) + ".",
              evidence,
              "Check the image decoding and the transforms: save a few transformed images and"
                  + " look at them.",
              null));
    } else if (pixels.max() > 2) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "input-not-scaled",
              Finding.CAUSE,
              "The input pixels go up to " + Stats.format(pixels.max()) + ", not 1.",
              evidence,
              "Divide the pixels by 255 once, or use kiln's loader, which returns values in"
                  + " [0, 1].",
              null));
    }
    long black = blackImages(images, batches);
    if (black > 0 && findings.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "input-black-images",
              Finding.CAUSE,
              black + " of " + faces(batches) + " transformed faces are all black.",
              evidence,
              "Find those files with `kiln train --skip-bad-rows` or open them: they may have"
                  + " failed to decode.",
              null));
    }
    findings.add(Finding.info("input-stats", "Input pixels.", evidence));
    return findings;
  }

  /** Learning rate at which {@link #slowOutputSentence} counts the steps, a common Adam rate. */
  private static final double TYPICAL_ADAM_RATE = 1e-3;

  /**
   * Returns the sentence that explains why unnormalized targets stall the loss: Adam moves each
   * weight by about the learning rate per step, whatever the gradient's size. The count is for the
   * output bias alone, at a typical rate, because this check does not know the run's optimizer.
   */
  private static String slowOutputSentence(float[] targets) {
    double magnitude = 0;
    for (float v : targets) {
      magnitude += Math.abs(v);
    }
    magnitude /= targets.length;
    if (!Double.isFinite(magnitude)) {
      return "Adam moves each weight by about the learning rate per step, so outputs that must"
          + " grow large take many steps, and until then the loss looks stuck.";
    }
    BigDecimal steps = new BigDecimal(magnitude / TYPICAL_ADAM_RATE).round(new MathContext(2));
    return "Adam moves each weight by about the learning rate per step, so at a rate of "
        + TYPICAL_ADAM_RATE
        + " the output bias alone would need about "
        + steps.toPlainString()
        + " steps to reach the targets' mean size of "
        + Stats.format(magnitude)
        + ", and until the outputs grow that large the loss looks stuck.";
  }

  /**
   * Checks the targets after normalization: mean, spread, the share beyond ±1 and the share of
   * keypoints outside the crop.
   */
  public static List<Finding> targets(List<Batch> batches, List<Sample> samples, int inputSize) {
    List<float[]> values = new ArrayList<>();
    for (Batch batch : batches) {
      values.add(batch.targets().toFloatArray());
    }
    float[] all = concat(values);
    Stats targets = Stats.of(all);
    double beyond = share(all, v -> Math.abs(v) > 1);
    double outside = outsideShare(samples, inputSize);
    String evidence =
        "targets: "
            + targets
            + "; "
            + Stats.percent(beyond)
            + " beyond ±1; "
            + Stats.percent(outside)
            + " of the keypoints lie outside the "
            + inputSize
            + "x"
            + inputSize
            + " crop";
    List<Finding> findings = new ArrayList<>();
    if (beyond > UNNORMALIZED_SHARE && beyond > outside + 0.2) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "targets-not-normalized",
              Finding.CAUSE,
              "The targets are not normalized: "
                  + Stats.percent(beyond)
                  + " of them are beyond ±1 although only "
                  + Stats.percent(outside)
                  + " of the keypoints lie outside the crop.",
              evidence,
              slowOutputSentence(all)
                  + " Map the keypoints to [-1, 1] before the loss, as (pixel - S/2) / (S/2) with"
                  + " the input side S (KeypointNormalization), and map predictions back the same"
                  + " way.",
              null));
    } else if (beyond > outside + 0.1) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "targets-scale",
              Finding.CAUSE,
              "More targets are beyond ±1 ("
                  + Stats.percent(beyond)
                  + ") than keypoints outside the crop ("
                  + Stats.percent(outside)
                  + "), so the normalization does not match the crop.",
              evidence,
              "Normalize with the side of the network input, (pixel - S/2) / (S/2).",
              null));
    } else if (targets.std() < 0.05) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "targets-too-small",
              Finding.CAUSE,
              "The targets hardly vary: their spread is " + Stats.format(targets.std()) + ".",
              evidence,
              "Normalize the keypoints once, as (pixel - S/2) / (S/2); a second division makes"
                  + " them tiny.",
              null));
    }
    if (outside > 0.05) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "keypoints-outside-crop",
              Finding.CAUSE,
              Stats.percent(outside) + " of the keypoints lie outside the crop.",
              evidence,
              "Rescale the faces to a larger side before cropping, or crop less tightly.",
              null));
    }
    findings.add(Finding.info("target-stats", "Targets after normalization.", evidence));
    return findings;
  }

  /**
   * Checks that point 36 is left of point 45 in most transformed faces, and writes a contact sheet
   * of them to {@code folder} when it is not null.
   */
  public static List<Finding> leftRight(List<Sample> samples, Path folder) {
    int left = Nme.LEFT_OUTER_EYE_CORNER;
    int right = Nme.RIGHT_OUTER_EYE_CORNER;
    List<Sample> swapped = new ArrayList<>();
    for (Sample sample : samples) {
      if (sample.x(left) > sample.x(right)) {
        swapped.add(sample);
      }
    }
    double share = (double) swapped.size() / samples.size();
    Path sheet = contactSheet(samples, swapped, folder);
    String evidence =
        "point "
            + left
            + " is right of point "
            + right
            + " in "
            + swapped.size()
            + " of "
            + samples.size()
            + " transformed training faces ("
            + Stats.percent(share)
            + ")";
    if (share > SWAPPED_EYES_SHARE) {
      return List.of(
          new Finding(
              Severity.CRITICAL,
              "flip-without-swap",
              Finding.CAUSE,
              "The training augmentation mirrors faces without swapping the left and right"
                  + " point indices: point "
                  + left
                  + " lands right of point "
                  + right
                  + " in "
                  + Stats.percent(share)
                  + " of the faces.",
              evidence,
              "When you flip an image, also reorder the points with the mirror permutation"
                  + " (HorizontalFlip.MIRROR_PERMUTATION: 36 <-> 45, 0 <-> 16, ...), or use"
                  + " kiln's HorizontalFlip.",
              sheet));
    }
    return List.of(
        new Finding(
            Severity.INFO,
            "left-right",
            Finding.MEASURED,
            "Left/right order of the eye corners.",
            evidence,
            "",
            sheet));
  }

  /** Writes a contact sheet with the faces that break the left/right order first. */
  private static Path contactSheet(List<Sample> samples, List<Sample> swapped, Path folder) {
    if (folder == null) {
      return null;
    }
    List<Sample> shown = new ArrayList<>(swapped.subList(0, Math.min(swapped.size(), 4)));
    for (Sample sample : samples) {
      if (shown.size() >= SHEET_FACES) {
        break;
      }
      if (!shown.contains(sample)) {
        shown.add(sample);
      }
    }
    Path png = folder.resolve("doctor-samples.png");
    try {
      KeypointOverlay.contactSheet(shown, 4, png);
      return png;
    } catch (IOException e) {
      LOG.warn("could not write the contact sheet {}: {}", png, e.toString());
      return null;
    }
  }

  private static double outsideShare(List<Sample> samples, int inputSize) {
    long outside = 0;
    long total = 0;
    for (Sample sample : samples) {
      for (double value : sample.keypoints()) {
        if (value < 0 || value > inputSize) {
          outside++;
        }
        total++;
      }
    }
    return total == 0 ? 0 : (double) outside / total;
  }

  private static long blackImages(List<float[]> images, List<Batch> batches) {
    long black = 0;
    for (int b = 0; b < batches.size(); b++) {
      float[] values = images.get(b);
      int size = batches.get(b).size();
      int plane = values.length / size;
      for (int i = 0; i < size; i++) {
        float max = 0;
        for (int j = i * plane; j < (i + 1) * plane; j++) {
          max = Math.max(max, values[j]);
        }
        if (max == 0) {
          black++;
        }
      }
    }
    return black;
  }

  private interface FloatTest {
    boolean test(float value);
  }

  private static double share(float[] values, FloatTest test) {
    long count = 0;
    for (float v : values) {
      if (test.test(v)) {
        count++;
      }
    }
    return (double) count / values.length;
  }

  static float[] concat(List<float[]> parts) {
    int length = 0;
    for (float[] part : parts) {
      length += part.length;
    }
    float[] result = new float[length];
    int offset = 0;
    for (float[] part : parts) {
      System.arraycopy(part, 0, result, offset, part.length);
      offset += part.length;
    }
    return result;
  }

  private static int faces(List<Batch> batches) {
    return batches.stream().mapToInt(Batch::size).sum();
  }
}
