package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.MaxPool2d;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;
import org.junit.jupiter.api.Test;

/**
 * End-to-end training on the CPU: a small CNN memorizes one fixed batch, and a model whose
 * optimizer holds another model's parameters is reported instead of silently not learning.
 */
class FitOneBatchTest {
  private static final int STEPS = 150;

  private static Sequential smallCnn(Generator g) {
    int[] one = {1, 1};
    return new Sequential(
        new Conv2d(1, 8, new int[] {3, 3}, one, one, one, true, DType.FLOAT32, g),
        new BatchNorm2d(8),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(8, 16, new int[] {3, 3}, one, one, one, true, DType.FLOAT32, g),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Linear(16 * 4 * 4, 32, true, DType.FLOAT32, g),
        new ReLU(),
        new Linear(32, 10, true, DType.FLOAT32, g));
  }

  private static Tensor uniform(Generator g, int... shape) {
    return Init.uniform(Tensor.zeros(DType.FLOAT32, shape), -1, 1, g);
  }

  @Test
  void smallCnnFitsOneBatch() {
    Generator g = new Generator(2024);
    Sequential model = smallCnn(g);
    Tensor images = uniform(g, 8, 1, 16, 16);
    Tensor targets = uniform(g, 8, 10);
    Optimizer optimizer = new Adam(model.parameters()).learningRate(3e-3);
    MSELoss loss = new MSELoss();

    double first = Double.NaN;
    double last = Double.NaN;
    for (int step = 0; step < STEPS; step++) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(images), targets);
      value.backward();
      optimizer.step();
      if (step == 0) {
        first = value.item();
      }
      last = value.item();
    }

    assertTrue(
        last < 0.01 * first,
        "loss fell only from " + first + " to " + last + " in " + STEPS + " steps");
  }

  @Test
  void optimizerOfAnotherModelIsReported() {
    Sequential trained = smallCnn(new Generator(1));
    Sequential other = smallCnn(new Generator(1));
    Optimizer optimizer = new Adam(other.parameters()).learningRate(1e-3);
    Generator g = new Generator(3);
    Tensor images = uniform(g, 2, 1, 16, 16);
    Tensor targets = uniform(g, 2, 10);

    optimizer.zeroGrad();
    new MSELoss().compute(trained.forward(images), targets).backward();
    IllegalStateException error = assertThrows(IllegalStateException.class, optimizer::step);

    assertTrue(error.getMessage().contains("received a gradient"), error.getMessage());
    assertEquals(0, optimizer.steps());
  }
}
