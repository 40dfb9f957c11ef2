package dev.kiln.keypoints.predict;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.ImageDecoder;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.train.Checkpoint;
import dev.kiln.keypoints.train.RunMetadata;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.Pipelines;
import dev.kiln.keypoints.transform.ToTensor;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A trained keypoint model, ready to predict: the API for applications that embed kiln.
 *
 * <pre>{@code
 * KeypointDetector detector = KeypointDetector.load(Path.of("runs/x/best.safetensors"));
 * double[] points = detector.detect(Path.of("face.jpg")); // x0, y0, ..., x67, y67
 * }</pre>
 *
 * <p>The input is a face crop, as in the training data; the result is in pixels of that image. An
 * instance is safe to use from many threads at once: it never changes after loading, and each call
 * runs the model in evaluation mode without recording a graph.
 */
public final class KeypointDetector {
  private final Sequential model;
  private final int inputSize;
  private final KeypointNormalization normalization;
  private final Transform pipeline;

  private KeypointDetector(Sequential model, KeypointNormalization normalization) {
    this.model = model;
    this.inputSize = normalization.inputSize();
    this.normalization = normalization;
    this.pipeline = Pipelines.evaluation(inputSize);
  }

  /**
   * Loads a checkpoint written by {@code kiln train} ({@code best.safetensors} or {@code
   * last.safetensors}); it contains the model description as well as the weights.
   *
   * @throws IOException if the file cannot be read or is not a kiln training checkpoint
   */
  public static KeypointDetector load(Path checkpointFile) throws IOException {
    Checkpoint checkpoint = Checkpoint.read(checkpointFile);
    ModelSpec spec =
        ModelSpec.parse(
            RunMetadata.require(checkpoint.metadata(), RunMetadata.MODEL_SPEC),
            checkpointFile + " (model_spec)");
    Sequential model = spec.build(DType.FLOAT32, new Generator(0));
    try {
      checkpoint.loadModel(model);
    } catch (IllegalArgumentException e) {
      throw new IOException(
          checkpointFile + ": the weights do not fit the stored model: " + e.getMessage(), e);
    }
    model.eval();
    return new KeypointDetector(model, KeypointNormalization.fromMetadata(checkpoint.metadata()));
  }

  /** Side of the square input that the model takes, in pixels. */
  public int inputSize() {
    return inputSize;
  }

  /** Decodes an image file (PNG or JPEG, by content) and predicts its keypoints. */
  public double[] detect(Path imageFile) throws IOException {
    return predict(ImageDecoder.decode(imageFile));
  }

  /** Predicts the 68 keypoints of a face crop, as x0, y0, ..., x67, y67 in its pixels. */
  public double[] predict(GrayImage image) {
    return predict(List.of(image)).get(0);
  }

  /** Predicts a batch of face crops at once, which is faster than one at a time. */
  public List<double[]> predict(List<GrayImage> images) {
    if (images.isEmpty()) {
      return List.of();
    }
    List<Sample> crops = new ArrayList<>(images.size());
    for (int i = 0; i < images.size(); i++) {
      Sample original = new Sample("image " + i, images.get(i), new double[2 * Sample.POINTS]);
      crops.add(pipeline.apply(original, null));
    }

    float[] outputs;
    try (var _ = GradMode.noGrad()) {
      Tensor prediction = model.forward(ToTensor.images(crops));
      outputs = prediction.toFloatArray();
    }

    List<double[]> result = new ArrayList<>(images.size());
    int width = 2 * Sample.POINTS;
    for (int i = 0; i < images.size(); i++) {
      double[] normalized = new double[width];
      for (int j = 0; j < width; j++) {
        normalized[j] = outputs[i * width + j];
      }
      GrayImage image = images.get(i);
      UnaryOperator<double[]> toOriginal =
          Pipelines.evaluationInverse(image.width(), image.height(), inputSize);
      result.add(toOriginal.apply(normalization.denormalize(normalized)));
    }
    return result;
  }
}
