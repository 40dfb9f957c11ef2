package dev.kiln.keypoints.doctor;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.keypoints.train.EpochRecord;
import dev.kiln.keypoints.transform.KeypointNormalization;
import dev.kiln.keypoints.transform.ToTensor;
import dev.kiln.keypoints.transform.Transform;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.optim.Optimizer;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * Everything that a training run is made of, as the doctor examines it. The checks change the
 * model's weights and the optimizer's state while they train, and put both back afterwards.
 *
 * @param model the model, in the mode that training uses
 * @param optimizer the optimizer that training steps
 * @param loss the training loss
 * @param trainingFaces the training faces, before the training pipeline
 * @param trainPipeline the augmentation pipeline of training
 * @param validationFaces the held-out faces, before the evaluation pipeline
 * @param validationPipeline the evaluation pipeline
 * @param normalization the map between crop pixels and normalized targets
 * @param collate turns transformed samples into a batch, as training does; {@link #standardCollate}
 *     is the trainer's
 * @param generator source of the faces and augmentations that the checks draw
 * @param history the run's epochs so far, empty for a model that has not trained
 * @param options which checks run, and their sizes
 */
public record DoctorInput(
    Sequential model,
    Optimizer optimizer,
    Loss loss,
    List<Sample> trainingFaces,
    Transform trainPipeline,
    List<Sample> validationFaces,
    Transform validationPipeline,
    KeypointNormalization normalization,
    Function<List<Sample>, Batch> collate,
    Generator generator,
    List<EpochRecord> history,
    DoctorOptions options) {

  /**
   * Minimum number of training faces and of validation faces. The checks evaluate batches of two
   * faces or more, because batch norm cannot normalize one face in training mode, so a set of one
   * face would give no batch and losses of NaN.
   */
  public static final int MIN_FACES = 2;

  public DoctorInput {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(optimizer, "optimizer");
    Objects.requireNonNull(loss, "loss");
    Objects.requireNonNull(trainPipeline, "trainPipeline");
    Objects.requireNonNull(validationPipeline, "validationPipeline");
    Objects.requireNonNull(normalization, "normalization");
    Objects.requireNonNull(collate, "collate");
    Objects.requireNonNull(generator, "generator");
    Objects.requireNonNull(options, "options");
    if (trainingFaces.size() < MIN_FACES || validationFaces.size() < MIN_FACES) {
      throw new IllegalArgumentException(
          "the doctor needs at least "
              + MIN_FACES
              + " training and "
              + MIN_FACES
              + " validation faces, got "
              + trainingFaces.size()
              + " and "
              + validationFaces.size());
    }
    trainingFaces = List.copyOf(trainingFaces);
    validationFaces = List.copyOf(validationFaces);
    history = List.copyOf(history);
  }

  /** Returns the trainer's collate function: images as they are, targets normalized. */
  public static Function<List<Sample>, Batch> standardCollate(KeypointNormalization normalization) {
    return samples ->
        new Batch(
            ToTensor.images(samples),
            ToTensor.keypoints(samples, normalization),
            samples.stream().map(Sample::name).toList());
  }

  /** Returns a copy with other options. */
  public DoctorInput withOptions(DoctorOptions value) {
    return new DoctorInput(
        model,
        optimizer,
        loss,
        trainingFaces,
        trainPipeline,
        validationFaces,
        validationPipeline,
        normalization,
        collate,
        generator,
        history,
        value);
  }
}
