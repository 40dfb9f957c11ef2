package dev.kiln.keypoints.eval;

import static dev.kiln.keypoints.io.JsonText.quote;

import dev.kiln.keypoints.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Summary of an evaluation over a data set: the per-face NMEs, their means overall and per region,
 * failure rates, and the cumulative error distribution (CED) curve with its area (AUC).
 */
public final class EvaluationResult {
  /**
   * Default upper end of the CED curve and of its AUC, as a fraction of the inter-ocular distance.
   */
  public static final double DEFAULT_CED_MAX = 0.15;

  /** Default spacing of the CED thresholds. */
  public static final double DEFAULT_CED_STEP = 0.001;

  /** Failure thresholds reported in the JSON summary. */
  private static final double[] FAILURE_THRESHOLDS = {0.08, 0.10};

  private final String checkpoint;
  private final String data;
  private final String device;
  private final List<Nme> faces;

  EvaluationResult(String checkpoint, String data, String device, List<Nme> faces) {
    this.checkpoint = checkpoint;
    this.data = data;
    this.device = device;
    this.faces = List.copyOf(faces);
  }

  /**
   * Cumulative error distribution sampled at {@code thresholds[i] = i * step}: {@code shares[i]} is
   * the fraction of faces whose NME is at most {@code thresholds[i]}.
   */
  public record Ced(double[] thresholds, double[] shares) {}

  /** Returns the name of the evaluated checkpoint. */
  public String checkpoint() {
    return checkpoint;
  }

  /** Returns the name of the evaluated data set. */
  public String data() {
    return data;
  }

  /** Returns the name of the device that ran the model, such as {@code cpu} or {@code cuda:0}. */
  public String device() {
    return device;
  }

  /** Returns the per-face NMEs in the order they were added. */
  public List<Nme> faces() {
    return faces;
  }

  /** Returns the number of faces. */
  public int count() {
    return faces.size();
  }

  /** Returns the mean NME over all faces. */
  public double meanNme() {
    double sum = 0;
    for (Nme face : faces) {
      sum += face.value();
    }
    return sum / faces.size();
  }

  /** Returns the mean over all faces of the NME of {@code region}. */
  public double meanNme(Region region) {
    double sum = 0;
    for (Nme face : faces) {
      sum += face.region(region);
    }
    return sum / faces.size();
  }

  /** Returns the fraction of faces whose NME is strictly above {@code threshold}. */
  public double failureRate(double threshold) {
    int failures = 0;
    for (Nme face : faces) {
      if (face.value() > threshold) {
        failures++;
      }
    }
    return (double) failures / faces.size();
  }

  /**
   * Returns the CED curve from 0 to {@code max} in steps of {@code step}. The last threshold is
   * {@code max} when {@code max} is a whole number of steps, which it is to within 1e-9 steps.
   */
  public Ced ced(double max, double step) {
    if (!(step > 0) || !(max > 0)) {
      throw new IllegalArgumentException(
          "CED max and step must be positive, got max " + max + " and step " + step);
    }
    int intervals = (int) Math.floor(max / step + 1e-9);
    double[] thresholds = new double[intervals + 1];
    double[] shares = new double[intervals + 1];
    for (int i = 0; i <= intervals; i++) {
      thresholds[i] = i * step;
      int below = 0;
      for (Nme face : faces) {
        if (face.value() <= thresholds[i]) {
          below++;
        }
      }
      shares[i] = (double) below / faces.size();
    }
    return new Ced(thresholds, shares);
  }

  /**
   * Returns the area under the CED curve from 0 to {@code max}, divided by {@code max}, so 1 means
   * every face has NME 0 and 0 means no face is below {@code max}. It integrates the exact step
   * function, not a sampled curve: each face adds {@code max(0, max - nme) / max} divided by the
   * number of faces.
   */
  public double auc(double max) {
    if (!(max > 0)) {
      throw new IllegalArgumentException("AUC max must be positive, got " + max);
    }
    double sum = 0;
    for (Nme face : faces) {
      sum += Math.max(0, max - face.value());
    }
    return sum / max / faces.size();
  }

  /**
   * Returns a JSON summary: the names of the checkpoint, data and device, the face count, the mean
   * NME overall and per region, the failure rates at 8% and 10%, the AUC and CED up to {@link
   * #DEFAULT_CED_MAX}, and every face's name and NME.
   */
  public String toJson() {
    StringBuilder json = new StringBuilder();
    json.append("{\n");
    json.append("  \"checkpoint\": ").append(quote(checkpoint)).append(",\n");
    json.append("  \"data\": ").append(quote(data)).append(",\n");
    json.append("  \"device\": ").append(quote(device)).append(",\n");
    json.append("  \"faces\": ").append(count()).append(",\n");
    json.append("  \"nme\": ").append(number(meanNme())).append(",\n");

    json.append("  \"nme_by_region\": {");
    Region[] regions = Region.values();
    for (int i = 0; i < regions.length; i++) {
      json.append(i == 0 ? "" : ", ");
      json.append(quote(regions[i].label())).append(": ").append(number(meanNme(regions[i])));
    }
    json.append("},\n");

    json.append("  \"failure_rate\": {");
    for (int i = 0; i < FAILURE_THRESHOLDS.length; i++) {
      json.append(i == 0 ? "" : ", ");
      json.append(quote(String.format(Locale.ROOT, "%.2f", FAILURE_THRESHOLDS[i])));
      json.append(": ").append(number(failureRate(FAILURE_THRESHOLDS[i])));
    }
    json.append("},\n");

    Ced ced = ced(DEFAULT_CED_MAX, DEFAULT_CED_STEP);
    json.append("  \"ced_max\": ").append(number(DEFAULT_CED_MAX)).append(",\n");
    json.append("  \"ced_step\": ").append(number(DEFAULT_CED_STEP)).append(",\n");
    json.append("  \"auc\": ").append(number(auc(DEFAULT_CED_MAX))).append(",\n");
    json.append("  \"ced\": [");
    for (int i = 0; i < ced.shares().length; i++) {
      json.append(i == 0 ? "" : ", ").append(number(ced.shares()[i]));
    }
    json.append("],\n");

    json.append("  \"per_face\": [");
    for (int i = 0; i < faces.size(); i++) {
      Nme face = faces.get(i);
      json.append(i == 0 ? "\n" : ",\n");
      json.append("    {\"name\": ").append(quote(face.name()));
      json.append(", \"nme\": ").append(number(face.value())).append("}");
    }
    json.append(faces.isEmpty() ? "]\n" : "\n  ]\n");
    json.append("}\n");
    return json.toString();
  }

  /**
   * Writes {@link #toJson()} to {@code file} atomically: into a temporary file in the same folder,
   * then renamed over {@code file}, so readers see either the old file or the whole new one.
   */
  public void writeJson(Path file) throws IOException {
    AtomicFiles.writeString(file, toJson());
  }

  private static String number(double value) {
    // Every NME is finite (Nme rejects non-finite coordinates), so JSON never needs NaN here.
    return Double.toString(value);
  }
}
