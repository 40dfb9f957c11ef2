package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
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
 * End-to-end training: a small CNN memorizes one fixed batch on the CPU and on the emulated device,
 * and a model whose optimizer has another model's parameters is reported instead of silently not
 * learning.
 */
class FitOneBatchTest {
  private static final int STEPS = 150;

  /**
   * Steps on the emulated device. It runs each CUDA thread of a block as an operating-system
   * thread, so a step of this small CNN costs seconds, almost all of it per kernel launch and not
   * per element. A shorter run with a smaller batch and a higher learning rate keeps the test near
   * a minute on two cores.
   */
  private static final int EMULATED_STEPS = 12;

  private static final int EMULATED_BATCH = 4;

  private static final double EMULATED_LEARNING_RATE = 1e-2;

  /** The first and last loss of a training run. */
  private record Fit(double first, double last) {}

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

  /**
   * Trains the small CNN with Adam on one fixed batch of random 16x16 images and targets, on {@code
   * device}. The model and the batch come from one seed, so that runs with the same batch size on
   * two devices start from the same values.
   */
  private static Fit fitOneBatch(Device device, int batch, double learningRate, int steps) {
    Generator g = new Generator(2024);
    Sequential model = smallCnn(g);
    Tensor images = uniform(g, batch, 1, 16, 16).to(device);
    Tensor targets = uniform(g, batch, 10).to(device);
    model.to(device);
    Optimizer optimizer = new Adam(model.parameters()).learningRate(learningRate);
    MSELoss loss = new MSELoss();

    double first = Double.NaN;
    double last = Double.NaN;
    for (int step = 0; step < steps; step++) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(images), targets);
      value.backward();
      optimizer.step();
      if (step == 0) {
        first = value.item();
      }
      last = value.item();
    }
    return new Fit(first, last);
  }

  @Test
  void smallCnnFitsOneBatch() {
    Fit fit = fitOneBatch(Device.CPU, 8, 3e-3, STEPS);

    assertTrue(
        fit.last() < 0.01 * fit.first(),
        "loss fell only from " + fit.first() + " to " + fit.last() + " in " + STEPS + " steps");
  }

  @Test
  void smallCnnFitsOneBatchOnEmulatedDevice() {
    Device emulated = Device.parse("emulated");
    Fit fit = fitOneBatch(emulated, EMULATED_BATCH, EMULATED_LEARNING_RATE, EMULATED_STEPS);

    // The bound is looser than the CPU test's 1% because the run is 12 steps, not 150. The same run
    // on the CPU ends at about 5% of its first loss, and the float32 kernels of the device follow
    // it closely, so 10% leaves a margin of two.
    assertTrue(
        fit.last() < 0.1 * fit.first(),
        "loss fell only from "
            + fit.first()
            + " to "
            + fit.last()
            + " in "
            + EMULATED_STEPS
            + " steps on "
            + emulated);
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
