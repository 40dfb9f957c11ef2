package dev.kiln.keypoints.cli;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Sequential;
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
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Trains a small CNN on one fixed batch of random images until it memorizes it: a quick check that
 * the engine's forward pass, backward pass and optimizer work together on this machine.
 */
@Command(
    name = "fit-batch",
    mixinStandardHelpOptions = true,
    description = {
      "Train a small CNN on one fixed batch of random 16x16 images and random targets, and report"
          + " whether the loss falls below 1%% of its first value.",
      "Exit code 0 when it does, 1 when it does not, and 2 when it cannot run: an invalid"
          + " option, or an error that the message names."
    },
    // 1 means that the batch was not memorized, so a failure to run gets another code.
    exitCodeOnExecutionException = 2)
final class FitBatchCommand implements Callable<Integer> {

  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--steps",
      defaultValue = "150",
      description = "Number of Adam steps (default: ${DEFAULT-VALUE}).")
  int steps;

  @Option(
      names = "--batch",
      defaultValue = "8",
      description = "Number of images in the batch (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(
      names = "--lr",
      defaultValue = "0.003",
      description = "Adam learning rate (default: ${DEFAULT-VALUE}).")
  double learningRate;

  @Option(
      names = "--seed",
      defaultValue = "2024",
      description = "Seed of the weights and the data (default: ${DEFAULT-VALUE}).")
  long seed;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    if (steps < 1 || batch < 1) {
      throw new picocli.CommandLine.ParameterException(
          spec.commandLine(), "--steps and --batch must be at least 1");
    }
    Generator g = new Generator(seed);
    int[] one = {1, 1};
    Sequential model =
        new Sequential(
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
    out.println(model);
    out.println();

    Tensor images = Init.uniform(Tensor.zeros(DType.FLOAT32, batch, 1, 16, 16), -1, 1, g);
    Tensor targets = Init.uniform(Tensor.zeros(DType.FLOAT32, batch, 10), -1, 1, g);
    Optimizer optimizer = new Adam(model.parameters()).learningRate(learningRate);
    MSELoss loss = new MSELoss();

    double first = Double.NaN;
    double last = Double.NaN;
    long start = System.nanoTime();
    for (int step = 1; step <= steps; step++) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(images), targets);
      value.backward();
      optimizer.step();
      last = value.item();
      if (step == 1) {
        first = last;
      }
      if (step == 1 || step % 25 == 0 || step == steps) {
        out.printf("step %4d  loss %.6f%n", step, last);
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;

    boolean learned = last < 0.01 * first;
    out.printf(
        "%nloss %.6f -> %.6f (%.2f%% of the first) in %d steps, %.1f s%n",
        first, last, 100 * last / first, steps, seconds);
    out.println(
        learned
            ? "OK: the model memorized the batch."
            : "FAILED: the loss did not fall below 1% of its first value.");
    out.flush();
    return learned ? 0 : 1;
  }
}
