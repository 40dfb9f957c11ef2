package dev.kiln.keypoints.train;

import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.predict.KeypointDetector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The checks of a model that {@link Trainer} runs before a run starts or resumes. */
final class ModelChecks {
  private ModelChecks() {}

  /**
   * Rejects a model whose input is not the 1 x S x S gray crop that the training pipelines make, or
   * whose S is above what {@code kiln predict} and {@code evaluate} accept, so that no run trains a
   * model that they would reject afterwards.
   */
  static void requireGrayKeypointInput(ModelSpec spec) {
    int[] shape = spec.inputShape();
    if (shape[0] != 1 || shape[1] != shape[2]) {
      throw new IllegalArgumentException(
          "model input "
              + shape[0]
              + "x"
              + shape[1]
              + "x"
              + shape[2]
              + " is not a square gray crop: the keypoint trainer feeds 1xSxS images, so start the"
              + " model file with a line such as input 1x96x96");
    }
    if (shape[1] > KeypointDetector.MAX_INPUT_SIZE) {
      throw new IllegalArgumentException(
          "model input 1x"
              + shape[1]
              + "x"
              + shape[2]
              + " is larger than the "
              + KeypointDetector.MAX_INPUT_SIZE
              + "x"
              + KeypointDetector.MAX_INPUT_SIZE
              + " that kiln predict and evaluate accept: use a smaller input size");
    }
  }

  /**
   * Rejects a {@code last.safetensors} whose model differs from the run's, such as one copied from
   * another run, and a {@code --model} file that was edited since the run started, before the
   * checkpoint's position or weights are used. The run's model is the {@code model.txt} that its
   * last start wrote; a run folder without one falls back to {@code --model}.
   */
  static void requireRunModel(Path run, TrainOptions options, Checkpoint last) throws IOException {
    Path file = run.resolve(Trainer.LAST);
    Path written = run.resolve(TrainingParts.MODEL_FILE);
    ModelSpec expected =
        Files.isRegularFile(written)
            ? ModelSpec.parse(Files.readString(written), written.toString())
            : ModelPresets.resolve(options.model());
    ModelSpec actual = RunMetadata.modelSpec(last.metadata(), file);
    if (!actual.equals(expected)) {
      throw new IOException(
          file
              + " holds another model ("
              + actual.summary()
              + ") than the run ("
              + expected.summary()
              + "), so it comes from another run: put this run's own "
              + Trainer.LAST
              + " back, or start a new run");
    }
    ModelSpec current = ModelPresets.resolve(options.model());
    if (!current.equals(expected)) {
      throw new IOException(
          "the model "
              + options.model()
              + " now describes "
              + current.summary()
              + ", but the run in "
              + run
              + " trained "
              + expected.summary()
              + " (its model.txt): restore the model file as it was when the run started, or"
              + " start a new run");
    }
  }
}
