package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.Losses;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * A captured {@link ModelState} must make a trial run repeatable: after {@code restore()} the model
 * gives the same outputs and takes the same steps, dropout masks included.
 */
class ModelStateTest {
  private static final String DROPOUT_MODEL =
      """
      input 1x8x8
      flatten
      linear 16
      relu
      dropout 0.5
      linear 136
      """;

  private static Sequential model() {
    return ModelSpec.parse(DROPOUT_MODEL, "test").build(DType.FLOAT32, new Generator(5));
  }

  private static Tensor images() {
    Generator random = new Generator(11);
    float[] pixels = new float[4 * 64];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (float) random.nextDouble();
    }
    return Tensor.of(pixels, 4, 1, 8, 8);
  }

  /** Returns the losses of {@code steps} Adam steps towards all-zero targets, one per step. */
  private static double[] train(Sequential model, Optimizer optimizer, Tensor images, int steps) {
    Loss loss = Losses.parse("mse");
    Tensor targets = Tensor.zeros(DType.FLOAT32, 4, 136);
    double[] losses = new double[steps];
    for (int step = 0; step < steps; step++) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(images), targets);
      losses[step] = value.item();
      value.backward();
      optimizer.step();
    }
    return losses;
  }

  @Test
  void restoreRepeatsDropoutMasks() {
    Sequential model = model();
    Tensor images = images();
    ModelState state = ModelState.capture(model, null);
    float[] first = model.forward(images).toFloatArray();
    float[] second = model.forward(images).toFloatArray();
    state.restore();
    float[] repeated = model.forward(images).toFloatArray();

    assertFalse(Arrays.equals(first, second), "each training pass draws new dropout masks");
    assertArrayEquals(first, repeated, "after restore() the masks start over");
  }

  @Test
  void restoreRepeatsTrainingSteps() {
    Sequential model = model();
    Optimizer optimizer = new Adam(model.parameters()).learningRate(1e-2);
    Tensor images = images();
    // One step first, so that the captured optimizer has moments and a step count to put back.
    train(model, optimizer, images, 1);
    ModelState state = ModelState.capture(model, optimizer);
    double[] first = train(model, optimizer, images, 5);
    state.restore();
    double[] repeated = train(model, optimizer, images, 5);

    assertArrayEquals(first, repeated, "the same weights, moments and masks give the same losses");
    assertEquals(6, optimizer.steps(), "the step count starts again from 1");
  }
}
