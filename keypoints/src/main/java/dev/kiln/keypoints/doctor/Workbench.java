package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.transform.Transform;
import java.util.ArrayList;
import java.util.List;

/**
 * The faces that the checks share: a few training batches after the training pipeline, with their
 * transformed samples, and a few validation batches after the evaluation pipeline.
 */
final class Workbench {
  private final DoctorInput input;
  private final List<Sample> trainSamples;
  private final List<Batch> trainBatches;
  private final List<Batch> validationBatches;
  private final List<Batch> trainEvaluationBatches;

  private Workbench(DoctorInput input) {
    this.input = input;
    int batchSize = input.options().batchSize();
    int count = input.options().dataBatches() * batchSize;
    Generator random = input.generator();

    this.trainSamples =
        transform(pick(input.trainingFaces(), count, random), input.trainPipeline(), random);
    this.trainBatches = batches(trainSamples, batchSize);
    this.validationBatches =
        batches(
            transform(
                pick(input.validationFaces(), count, random), input.validationPipeline(), random),
            batchSize);
    this.trainEvaluationBatches =
        batches(
            transform(
                pick(input.trainingFaces(), count, random), input.validationPipeline(), random),
            batchSize);
  }

  /** Draws the faces and builds the batches of {@code input}. */
  static Workbench of(DoctorInput input) {
    return new Workbench(input);
  }

  DoctorInput input() {
    return input;
  }

  /** Training faces after the training pipeline, in pixels of the network input. */
  List<Sample> trainSamples() {
    return trainSamples;
  }

  /** The training faces as batches. */
  List<Batch> trainBatches() {
    return trainBatches;
  }

  /** Validation faces after the evaluation pipeline, as batches. */
  List<Batch> validationBatches() {
    return validationBatches;
  }

  /** Other training faces after the evaluation pipeline, for the mean and median training shape. */
  List<Batch> trainEvaluationBatches() {
    return trainEvaluationBatches;
  }

  /** Returns the model's mean loss over {@code batches}, without gradients, in its current mode. */
  double meanLoss(List<Batch> batches) {
    double sum = 0;
    int faces = 0;
    try (var _ = GradMode.noGrad()) {
      for (Batch batch : batches) {
        Tensor prediction = input.model().forward(batch.images());
        sum += input.loss().compute(prediction, batch.targets()).item() * batch.size();
        faces += batch.size();
      }
    }
    return sum / faces;
  }

  private static List<Sample> pick(List<Sample> samples, int count, Generator random) {
    List<Sample> result = new ArrayList<>(count);
    if (samples.size() <= count) {
      result.addAll(samples);
      return result;
    }
    List<Sample> pool = new ArrayList<>(samples);
    for (int i = 0; i < count; i++) {
      int j = i + random.nextInt(pool.size() - i);
      Sample swap = pool.get(i);
      pool.set(i, pool.get(j));
      pool.set(j, swap);
      result.add(pool.get(i));
    }
    return result;
  }

  private static List<Sample> transform(
      List<Sample> samples, Transform pipeline, Generator random) {
    List<Sample> result = new ArrayList<>(samples.size());
    for (Sample sample : samples) {
      result.add(pipeline.apply(sample, new Generator(random.nextLong())));
    }
    return result;
  }

  private List<Batch> batches(List<Sample> samples, int batchSize) {
    List<Batch> result = new ArrayList<>();
    for (int from = 0; from < samples.size(); from += batchSize) {
      int to = Math.min(samples.size(), from + batchSize);
      if (to - from >= 2) {
        result.add(input.collate().apply(samples.subList(from, to)));
      }
    }
    return result;
  }
}
