package dev.kiln.keypoints.train;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.eval.Nme;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Module;
import dev.kiln.nn.loss.Loss;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The loss and the normalized mean error of a model on held-out faces, in evaluation mode.
 *
 * @param loss mean loss per face
 * @param nme mean NME over the faces, normalized by the distance of points 36 and 45, computed on
 *     the crop's pixels. The crop does not change an NME. The rescale keeps the aspect ratio only
 *     up to the rounding of the longer side, so its two axis factors differ by up to 0.5 /
 *     round(1.15 S), 0.45% at S = 96. So {@code kiln evaluate}, which measures in the original
 *     pixels, can give the same faces a slightly different NME
 * @param meanShapeLoss mean loss per face of always predicting the mean training shape, or NaN
 *     before the first training batch
 * @param medianShapeLoss mean loss per face of always predicting the per-coordinate median training
 *     shape, or NaN before the first training batch
 */
public record Validation(double loss, double nme, double meanShapeLoss, double medianShapeLoss) {

  /**
   * Returns the lower of the mean-shape and the median-shape loss: the loss of the constant shape
   * that a model which ignores the image learns (see {@link ConstantShapes}).
   */
  public double constantShapeLoss() {
    return Math.min(meanShapeLoss, medianShapeLoss);
  }

  /**
   * Runs the model over {@code samples} through the evaluation pipeline, on the model's device. The
   * predictions come back to the CPU for the NME, one batch at a time. {@code trainedShapes}
   * contains the training targets' constant shapes that the baseline loss compares with.
   */
  public static Validation run(
      Module model,
      List<Sample> samples,
      Transform pipeline,
      Function<List<Sample>, Batch> collate,
      Loss loss,
      KeypointNormalization normalization,
      int batchSize,
      int threads,
      ConstantShapes trainedShapes) {
    Device device = model.device();
    boolean wasTraining = model.isTraining();
    model.eval();
    double lossSum = 0;
    double nmeSum = 0;
    int faces = 0;
    List<float[]> targets = new ArrayList<>();
    try (var _ = GradMode.noGrad();
        BatchLoader loader =
            new BatchLoader(samples, pipeline, collate, batchSize, false, 0, 0, threads, 0)) {
      while (loader.hasNext()) {
        Batch batch = loader.next();
        float[] predicted;
        // The scope releases the batch's device blocks or CPU arrays as soon as its numbers are
        // read.
        try (var _ = MemoryScope.open()) {
          Tensor prediction = model.forward(batch.images().to(device));
          lossSum += loss.compute(prediction, batch.targets().to(device)).item() * batch.size();
          predicted = prediction.to(Device.CPU).toFloatArray();
        }
        float[] truth = batch.targets().toFloatArray();
        targets.add(truth);
        int width = predicted.length / batch.size();
        for (int i = 0; i < batch.size(); i++) {
          double[] p = normalization.denormalize(row(predicted, i, width));
          double[] t = normalization.denormalize(row(truth, i, width));
          nmeSum += Nme.of(batch.names().get(i), p, t).value();
        }
        faces += batch.size();
      }
    } finally {
      model.train(wasTraining);
    }
    return withBaselines(lossSum / faces, nmeSum / faces, targets, trainedShapes, loss);
  }

  /**
   * Returns the validation of {@code modelLoss} and {@code nme}, with the losses of predicting the
   * mean and the median shape of {@code shapes} for every face. {@code batches} contains each
   * batch's targets, rows of the shapes' width one after another.
   */
  static Validation withBaselines(
      double modelLoss, double nme, List<float[]> batches, ConstantShapes shapes, Loss loss) {
    float[] mean = shapes.mean();
    if (mean == null) {
      return new Validation(modelLoss, nme, Double.NaN, Double.NaN);
    }
    int width = mean.length;
    int values = batches.stream().mapToInt(batch -> batch.length).sum();
    float[] all = new float[values];
    int filled = 0;
    for (float[] batch : batches) {
      System.arraycopy(batch, 0, all, filled, batch.length);
      filled += batch.length;
    }
    Tensor truth = Tensor.of(all, values / width, width);
    return new Validation(
        modelLoss,
        nme,
        ConstantShapes.loss(truth, mean, loss),
        ConstantShapes.loss(truth, shapes.median(), loss));
  }

  private static double[] row(float[] values, int index, int width) {
    double[] result = new double[width];
    for (int j = 0; j < width; j++) {
      result[j] = values[index * width + j];
    }
    return result;
  }
}
