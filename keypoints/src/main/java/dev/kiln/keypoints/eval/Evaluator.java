package dev.kiln.keypoints.eval;

import dev.kiln.keypoints.data.Sample;
import java.util.ArrayList;
import java.util.List;

/**
 * Accumulates the per-face NMEs of one evaluation run, then summarizes them as an {@link
 * EvaluationResult}. Not thread-safe.
 */
public final class Evaluator {
  private final String checkpoint;
  private final String data;
  private final String device;
  private final List<Nme> faces = new ArrayList<>();

  /**
   * Creates an empty evaluator.
   *
   * @param checkpoint name of the evaluated model checkpoint, copied into the report
   * @param data name of the evaluated data set, copied into the report
   * @param device name of the device that ran the model ({@code cpu}, {@code cuda:0}, ...), copied
   *     into the report
   */
  public Evaluator(String checkpoint, String data, String device) {
    this.checkpoint = checkpoint;
    this.data = data;
    this.device = device;
  }

  /** Adds the NME of one face. */
  public Evaluator add(Nme nme) {
    faces.add(nme);
    return this;
  }

  /**
   * Computes and adds the NME of {@code predicted} against {@code truth}.
   *
   * @throws IllegalArgumentException as {@link Nme#of(String, double[], double[])} does
   */
  public Evaluator add(Sample truth, double[] predicted) {
    return add(Nme.of(truth, predicted));
  }

  /** Returns the number of faces added so far. */
  public int count() {
    return faces.size();
  }

  /**
   * Returns the summary of the faces added so far.
   *
   * @throws IllegalStateException if no face was added, because the means would be undefined
   */
  public EvaluationResult result() {
    if (faces.isEmpty()) {
      throw new IllegalStateException(
          "no faces were evaluated for data '" + data + "': add at least one face");
    }
    return new EvaluationResult(checkpoint, data, device, faces);
  }
}
