package dev.kiln.keypoints.train;

import dev.kiln.keypoints.model.ModelFormatException;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.keypoints.predict.KeypointDetector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The checks of a model that {@link Trainer} runs before a run starts or resumes, and that {@code
 * kiln doctor} runs before it loads data.
 */
public final class ModelChecks {
  private ModelChecks() {}

  /**
   * Rejects a model whose input is not the 1 x S x S gray crop that the training pipelines make, or
   * whose S is above what {@code kiln predict} and {@code evaluate} accept, so that no run trains a
   * model that they would reject afterwards. The error names the model's {@code input} line.
   *
   * @throws ModelFormatException naming the model file or preset, the line of its input statement,
   *     and the input statement to write instead
   */
  public static void requireGrayKeypointInput(ModelSpec spec) {
    int[] shape = spec.inputShape();
    String input = shape[0] + "x" + shape[1] + "x" + shape[2];
    if (shape[0] != 1 || shape[1] != shape[2]) {
      int side = Math.min(shape[1], KeypointDetector.MAX_INPUT_SIZE);
      throw new ModelFormatException(
          spec.sourceName(),
          spec.inputLine(),
          "the model takes "
              + input
              + " inputs, but kiln feeds keypoint models square gray crops, 1xSxS: change this"
              + " line to 'input 1x"
              + side
              + "x"
              + side
              + "'");
    }
    if (shape[1] > KeypointDetector.MAX_INPUT_SIZE) {
      int limit = KeypointDetector.MAX_INPUT_SIZE;
      throw new ModelFormatException(
          spec.sourceName(),
          spec.inputLine(),
          "the model takes "
              + input
              + " inputs, larger than the 1x"
              + limit
              + "x"
              + limit
              + " that kiln predict and evaluate accept: change this line to a smaller size, such"
              + " as 'input 1x96x96'");
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
