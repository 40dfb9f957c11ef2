package dev.kiln.benchmarks;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.optim.Adam;
import dev.kiln.nn.optim.Optimizer;

/**
 * One keypoint preset with a fixed batch of random images and targets, and the two units of work
 * that the end-to-end benchmarks and the PyTorch comparison time. {@code pytorch_bench.py} does the
 * same work in the same order, so change both together.
 *
 * <ul>
 *   <li>A training step: drop the gradients, forward in training mode, mean squared error against
 *       the targets, backward, and one Adam step with PyTorch's defaults.
 *   <li>An inference batch: forward in evaluation mode with gradient recording off.
 * </ul>
 */
public final class KeypointWorkload {
  private final String preset;
  private final int batch;
  private final ModelSpec spec;
  private final Sequential model;
  private final Adam optimizer;
  private final MSELoss loss = new MSELoss();
  private final Device target;
  private final Tensor images;
  private final Tensor targets;

  /**
   * Builds the preset in float32 with weights drawn from {@code seed}, and draws standard normal
   * images and targets from the same seed.
   *
   * @throws IllegalArgumentException for an unknown preset, a batch below 1, or a device that the
   *     benchmarks cannot run on (see {@link BenchDevice})
   */
  public KeypointWorkload(String preset, int batch, String device, long seed) {
    if (batch < 1) {
      throw new IllegalArgumentException("batch must be 1 or more, got " + batch);
    }
    this.target = BenchDevice.resolve(device);
    this.preset = preset;
    this.batch = batch;
    this.spec = ModelPresets.byName(preset);
    Generator generator = new Generator(seed);
    this.model = spec.build(DType.FLOAT32, generator);
    // The weights are drawn on the CPU first, so a seed gives the same model on every device.
    model.to(target);
    this.optimizer = new Adam(model.parameters());

    int[] image = spec.inputShape();
    this.images =
        gaussian(generator, batch, image[0], image[1], image[2]).to(target).requiresGrad(false);
    this.targets = gaussian(generator, batch, ModelSpec.OUTPUTS).to(target);
  }

  /** Returns a float32 tensor of the given shape filled with standard normal values. */
  public static Tensor gaussian(Generator generator, int... shape) {
    int count = 1;
    for (int size : shape) {
      count = Math.multiplyExact(count, size);
    }
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) generator.nextGaussian();
    }
    return Tensor.of(values, shape);
  }

  /**
   * Runs one training step and returns the loss before the step. Reading the loss waits for the
   * device, so on a GPU the step has finished when this returns.
   */
  public double trainStep() {
    model.train();
    return trainStep(model, optimizer, loss, images, targets);
  }

  /**
   * Runs one training step of {@code model} on one batch and returns the loss before the update. As
   * in kiln's trainer, the step's memory is released when its scope closes: device blocks to the
   * cache, CPU arrays to the thread's pool. {@link TrainingStepTimer} times this same step.
   */
  static double trainStep(
      Module model, Optimizer optimizer, Loss loss, Tensor input, Tensor target) {
    try (var _ = MemoryScope.open()) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(input), target);
      value.backward();
      optimizer.step();
      return value.item();
    }
  }

  /**
   * Runs the forward pass of one batch in evaluation mode and returns the number of predicted
   * values. The predictions' device block goes back to the cache before this returns.
   */
  public int inferBatch() {
    model.eval();
    try (var _ = GradMode.noGrad();
        var _ = MemoryScope.open()) {
      Tensor predictions = model.forward(images);
      BenchDevice.synchronize(target);
      return predictions.numel();
    }
  }

  public String preset() {
    return preset;
  }

  public int batch() {
    return batch;
  }

  public ModelSpec spec() {
    return spec;
  }

  public Sequential model() {
    return model;
  }
}
