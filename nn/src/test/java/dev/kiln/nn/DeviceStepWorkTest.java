package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.backend.device.DeviceWork;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.MaxPool2d;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.loss.L1Loss;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.optim.Adam;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Counts the device work of steady-state training steps on the {@code emulated} device, which runs
 * the same launchers as a GPU. The model is small but has the presets' layer kinds, and each step
 * runs as the keypoint trainer's does: upload the batch, zero the gradients, forward, loss,
 * backward, Adam, read the loss. Once warm, such a step may copy the batch to the device and the
 * loss back, and nothing else. It must not synchronize, copy within the device or allocate from the
 * device, because a GPU pays for each of those with a stalled host or a driver call, and it must
 * launch the same kernels in every step.
 */
class DeviceStepWorkTest {
  private static final Device EMULATED = Device.parse("emulated");

  private static final int BATCH = 2;
  private static final int OUTPUTS = 5;

  /** Steps before counting: the first uploads the shapes and fills the allocator's cache. */
  private static final int WARMUP_STEPS = 2;

  private static final int COUNTED_STEPS = 3;

  /** Conv, batch norm, ReLU, max pool, flatten, dropout and linear, as in the presets. */
  private static Sequential model(Generator g) {
    int[] one = {1, 1};
    int[] three = {3, 3};
    return new Sequential(
        new Conv2d(1, 4, three, one, one, one, false, DType.FLOAT32, g),
        new BatchNorm2d(4),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(4, 4, three, one, one, one, true, DType.FLOAT32, g),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Dropout(0.2, g),
        new Linear(4 * 2 * 2, 8, true, DType.FLOAT32, g),
        new ReLU(),
        new Linear(8, OUTPUTS, true, DType.FLOAT32, g));
  }

  @ParameterizedTest
  @ValueSource(strings = {"mse", "l1"})
  void steadyStepCopiesOnlyBatchAndLoss(String lossName) {
    Generator g = new Generator(3);
    Sequential model = model(g);
    model.to(EMULATED);
    model.train();
    Tensor images = Init.uniform(Tensor.zeros(DType.FLOAT32, BATCH, 1, 8, 8), -1, 1, g);
    Tensor targets = Init.uniform(Tensor.zeros(DType.FLOAT32, BATCH, OUTPUTS), -1, 1, g);
    Adam optimizer = new Adam(model.parameters()).learningRate(1e-3);
    Loss loss = lossName.equals("mse") ? new MSELoss() : new L1Loss();
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();

    for (int step = 0; step < WARMUP_STEPS; step++) {
      trainStep(model, optimizer, loss, images, targets);
    }
    List<DeviceWork> steps = new ArrayList<>();
    for (int step = 0; step < COUNTED_STEPS; step++) {
      DeviceWork before = runtime.work();
      trainStep(model, optimizer, loss, images, targets);
      steps.add(runtime.work().minus(before));
    }

    long batchBytes = (images.numel() + targets.numel()) * (long) Float.BYTES;
    for (int i = 0; i < steps.size(); i++) {
      DeviceWork work = steps.get(i);
      String step = lossName + " step " + (WARMUP_STEPS + i + 1) + ": " + work;
      assertEquals(2, work.copiesToDevice(), step + ": copies to the device, images and targets");
      assertEquals(batchBytes, work.bytesToDevice(), step + ": bytes to the device");
      assertEquals(1, work.copiesToHost(), step + ": copies to the host, the loss alone");
      assertEquals(Float.BYTES, work.bytesToHost(), step + ": bytes to the host");
      assertEquals(0, work.copiesWithinDevice(), step + ": copies within the device");
      assertEquals(0, work.synchronizations(), step + ": synchronizations");
      assertEquals(0, work.deviceAllocations(), step + ": raw device allocations");
      assertEquals(0, work.deviceFrees(), step + ": raw device frees");
      assertEquals(work.allocations(), work.cacheHits(), step + ": allocations from the cache");
      assertEquals(0, work.libraryCalls(), step + ": emulated has no cuBLAS or cuDNN");
      // One fill, of backward's seed of 1: a zero fill per parameter or gradient would show here.
      assertEquals(1L, work.launchesByKernel().get("kiln_layout_fill"), step + ": fills");
      // The loss's value is reduced once, in the forward pass, and the other two sums are the
      // linear layers' bias gradients.
      assertEquals(3L, work.launchesByKernel().get("kiln_reductions_sum"), step + ": sums");
      assertEquals(
          (long) model.parameters().size(),
          work.launchesByKernel().get("kiln_optimizers_adam"),
          step + ": Adam launches, one per parameter");
      assertEquals(
          steps.get(0).launchesByKernel(), work.launchesByKernel(), step + ": launches by kernel");
    }
  }

  /** One step as the keypoint trainer runs it, with the batch uploaded inside the step. */
  private static void trainStep(
      Sequential model, Adam optimizer, Loss loss, Tensor images, Tensor targets) {
    try (var _ = MemoryScope.open()) {
      optimizer.zeroGrad();
      Tensor value = loss.compute(model.forward(images.to(EMULATED)), targets.to(EMULATED));
      value.backward();
      optimizer.step();
      value.item();
    }
  }
}
