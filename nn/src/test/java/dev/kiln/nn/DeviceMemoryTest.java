package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
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
import java.util.function.LongPredicate;
import org.junit.jupiter.api.Test;

/**
 * Device memory over a training loop on the {@code emulated} device: every block that a step
 * allocates goes back to the caching allocator once its tensors become unreachable, and the cache
 * serves later steps instead of growing.
 *
 * <p>Blocks return through a {@link java.lang.ref.Cleaner} after the garbage collector finds their
 * storage unreachable, so the test requests collections until the counters reach the expected value
 * or {@link #SETTLE_MILLIS} pass. It does so after every step, too, because a step allocates little
 * Java heap and the collector may then not run for many steps. Until it runs, each step takes fresh
 * blocks from the device instead of cached ones. A {@link MemoryScope} around each step removes
 * that wait, which the second test shows.
 */
class DeviceMemoryTest {
  private static final Device EMULATED = Device.parse("emulated");

  private static final int STEPS = 20;

  /** Maximum wait for the cleaner to hand back unreachable blocks, in milliseconds. */
  private static final long SETTLE_MILLIS = 10_000;

  /** Polls of an unchanged count that show that no more blocks are coming back. */
  private static final int STABLE_POLLS = 5;

  private static CachingAllocator allocator() {
    return DeviceKernels.of(EMULATED).runtime().allocator();
  }

  private static long constantBytes() {
    return DeviceKernels.of(EMULATED).runtime().constants().bytes();
  }

  private static long bytesInUse() {
    return allocator().stats().bytesInUse();
  }

  /**
   * Runs the garbage collector until {@code done} accepts the bytes in use, or until the count has
   * stayed the same for {@link #STABLE_POLLS} polls when {@code done} is null, or until {@link
   * #SETTLE_MILLIS} pass. Returns the last count.
   */
  private static long settle(LongPredicate done) throws InterruptedException {
    long deadline = System.nanoTime() + SETTLE_MILLIS * 1_000_000;
    long last = -1;
    int unchanged = 0;
    while (true) {
      System.gc();
      Thread.sleep(20);
      long now = bytesInUse();
      unchanged = now == last ? unchanged + 1 : 0;
      last = now;
      boolean finished = done == null ? unchanged >= STABLE_POLLS : done.test(now);
      if (finished || System.nanoTime() > deadline) {
        return now;
      }
    }
  }

  /** Returns the bytes that the allocator hands out for a tensor, at the rounded size class. */
  private static long blockBytes(Tensor tensor) {
    return CachingAllocator.sizeClass(Math.max(1, tensor.numel()) * (long) Float.BYTES);
  }

  private static Sequential smallCnn(Generator g) {
    int[] one = {1, 1};
    return new Sequential(
        new Conv2d(1, 4, new int[] {3, 3}, one, one, one, true, DType.FLOAT32, g),
        new BatchNorm2d(4),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Linear(4 * 4 * 4, 5, true, DType.FLOAT32, g));
  }

  /** What one training iteration leaves on the device: model, batch and optimizer. */
  private static final class Training {
    final Sequential model;
    final Tensor images;
    final Tensor targets;
    final Optimizer optimizer;
    final MSELoss loss = new MSELoss();

    Training() {
      Generator g = new Generator(11);
      model = smallCnn(g);
      model.to(EMULATED);
      images = Init.uniform(Tensor.zeros(DType.FLOAT32, 4, 1, 8, 8), -1, 1, g).to(EMULATED);
      targets = Init.uniform(Tensor.zeros(DType.FLOAT32, 4, 5), -1, 1, g).to(EMULATED);
      optimizer = new Adam(model.parameters()).learningRate(1e-3);
    }

    void step() {
      Tensor value = loss.compute(model.forward(images), targets);
      value.backward();
      optimizer.step();
      optimizer.zeroGrad();
    }

    /** Runs {@link #step()} in a memory scope, which releases the step's blocks when it ends. */
    void scopedStep() {
      try (var _ = MemoryScope.open()) {
        step();
      }
    }

    /** Bytes of the tensors this object keeps: model, batch, and Adam's two moments. */
    long liveBytes() {
      long bytes = blockBytes(images) + blockBytes(targets);
      for (Tensor tensor : model.stateDict().values()) {
        bytes += blockBytes(tensor);
      }
      for (Tensor parameter : model.parameters()) {
        bytes += 2 * blockBytes(parameter);
      }
      return bytes;
    }
  }

  @Test
  void trainingStepsReturnEveryBlock() throws InterruptedException {
    // Blocks that earlier tests left unreachable must be back before anything is counted.
    long before = settle(null);
    long constantsBefore = constantBytes();

    Training training = new Training();
    // The warm-up step creates Adam's moments, which stay for the rest of the test, and uploads the
    // step's shapes to the device's constants once.
    training.step();
    long constants = constantBytes() - constantsBefore;
    long expected = before + training.liveBytes() + constants;
    long baseline = settle(now -> now == expected);
    assertEquals(
        training.liveBytes() + constants,
        baseline - before,
        "after one step, bytes in use should be the model, batch, optimizer state and shapes only");

    long reservedAfterTwo = 0;
    long deviceAllocationsAfterTwo = 0;
    for (int step = 1; step <= STEPS; step++) {
      training.step();
      long afterStep = settle(now -> now == baseline);
      assertEquals(baseline, afterStep, "bytes in use after step " + step);
      if (step == 2) {
        reservedAfterTwo = allocator().stats().bytesReserved();
        deviceAllocationsAfterTwo = allocator().stats().deviceAllocations();
      }
    }

    // Steps 3 to 20 request the same sizes as the steps before them, so the cache serves them all.
    long reservedAfterAll = allocator().stats().bytesReserved();
    assertTrue(
        reservedAfterAll <= 1.5 * reservedAfterTwo,
        "reserved bytes grew from "
            + reservedAfterTwo
            + " after 2 steps to "
            + reservedAfterAll
            + " after "
            + STEPS);
    assertEquals(
        deviceAllocationsAfterTwo,
        allocator().stats().deviceAllocations(),
        "device allocations after step 2");

    assertEquals(constants, constantBytes() - constantsBefore, "later steps reuse the shapes");

    training = null;
    long afterRelease = settle(now -> now == before + constants);
    assertEquals(
        before + constants,
        afterRelease,
        "bytes in use after the model and optimizer were dropped (the shapes stay cached)");
  }

  @Test
  void scopedStepsNeedNoCollection() throws InterruptedException {
    settle(null);
    // Earlier tests may have nearly filled the cache of shape arrays, which empties itself when it
    // is full and would then upload again in the middle of this test.
    DeviceKernels.of(EMULATED).runtime().constants().clear();
    Training training = new Training();
    training.scopedStep();
    long baseline = bytesInUse();
    long deviceAllocations = 0;
    for (int step = 2; step <= STEPS; step++) {
      training.scopedStep();
      assertEquals(baseline, bytesInUse(), "bytes in use after scoped step " + step);
      // After other tests in the same JVM, the second step has taken one block more than the
      // first, whose requests partly met blocks those tests had left in the cache. From the
      // third step on, the requests repeat exactly.
      if (step == 2) {
        deviceAllocations = allocator().stats().deviceAllocations();
      }
    }
    assertEquals(
        deviceAllocations,
        allocator().stats().deviceAllocations(),
        "scoped steps after the second should take every block from the cache");
  }
}
