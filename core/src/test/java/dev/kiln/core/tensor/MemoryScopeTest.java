package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.AllocatorStats;
import dev.kiln.core.backend.device.DeviceKernels;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * {@link MemoryScope} on the {@code emulated} device: what a scope releases, what survives it, and
 * the errors for a released tensor and for scopes closed out of order.
 */
class MemoryScopeTest {
  private static final Device EMULATED = Device.parse("emulated");

  private static AllocatorStats stats() {
    return DeviceKernels.of(EMULATED).runtime().allocator().stats();
  }

  private static Tensor onDevice(float... values) {
    return Tensor.of(values, values.length).to(EMULATED);
  }

  @Test
  void closingReleasesEverythingAllocatedInside() {
    long before = stats().bytesInUse();
    Tensor result;
    try (var scope = MemoryScope.open()) {
      Tensor x = onDevice(1, 2, 3);
      result = x.mul(2).add(1);
      assertArrayEquals(new float[] {3, 5, 7}, result.toFloatArray());
      assertEquals(3, scope.ownedStorages());
    }
    // At most: a collection during the test may also free blocks of earlier tests.
    assertTrue(stats().bytesInUse() <= before);
    IllegalStateException e = assertThrows(IllegalStateException.class, result::toFloatArray);
    assertTrue(e.getMessage().contains("memory scope"), e.getMessage());
  }

  @Test
  void keptTensorsAndTheirViewsSurvive() {
    Tensor scaled;
    Tensor view;
    try (var scope = MemoryScope.open()) {
      scaled = MemoryScope.keep(onDevice(1, 2, 3, 4).mul(10));
      view = scaled.reshape(2, 2);
      assertEquals(1, scope.ownedStorages(), "the input of mul, not its kept result");
    }
    assertArrayEquals(new float[] {10, 20, 30, 40}, scaled.toFloatArray());
    assertEquals(40.0, view.get(1, 1));
  }

  @Test
  void innerScopeReleasesOnlyItsOwn() {
    try (var outer = MemoryScope.open()) {
      Tensor outerTensor = onDevice(1, 2);
      Tensor innerTensor;
      try (var inner = MemoryScope.open()) {
        innerTensor = outerTensor.add(1);
        assertEquals(1, inner.ownedStorages());
      }
      assertThrows(IllegalStateException.class, innerTensor::toFloatArray);
      assertArrayEquals(new float[] {1, 2}, outerTensor.toFloatArray());
      assertEquals(1, outer.ownedStorages());
    }
  }

  @Test
  void laterStepsReuseCachedBlocks() {
    Tensor weight = onDevice(0.5f, -1, 2, 0.25f).reshape(2, 2).detach().requiresGrad(true);
    Tensor input = MemoryScope.keep(onDevice(1, 2, 3, 4, 5, 6).reshape(3, 2));
    // The first step also uploads the launchers' shape arrays, which each device keeps.
    long inUseAfterFirst = 0;
    long deviceAllocationsAfterFirst = 0;
    for (int step = 0; step < 5; step++) {
      try (var _ = MemoryScope.open()) {
        weight.zeroGrad();
        Tensor loss = input.matmul(weight).relu().sum();
        loss.backward();
        // Column sums of the input where the product is positive: column 1 is negative throughout.
        assertArrayEquals(new float[] {9, 0, 12, 0}, weight.grad().toFloatArray());
      }
      if (step == 0) {
        inUseAfterFirst = stats().bytesInUse();
        deviceAllocationsAfterFirst = stats().deviceAllocations();
      }
      assertTrue(stats().bytesInUse() <= inUseAfterFirst, "bytes in use grew in step " + step);
    }
    assertEquals(deviceAllocationsAfterFirst, stats().deviceAllocations());
  }

  @Test
  void backwardIntoAReleasedGradientSaysToZeroIt() {
    Tensor weight = onDevice(1, 2).detach().requiresGrad(true);
    try (var _ = MemoryScope.open()) {
      weight.mul(3).sum().backward();
    }
    try (var _ = MemoryScope.open()) {
      Tensor loss = weight.mul(3).sum();
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().contains("zeroGrad()"), e.getMessage());
      // The check comes before any node runs, so the graph is still there for a second try.
      weight.zeroGrad();
      loss.backward();
      assertArrayEquals(new float[] {3, 3}, weight.grad().toFloatArray());
    }
  }

  @Test
  void keptGradientAccumulatesOverScopes() {
    Tensor weight = onDevice(1, 2).detach().requiresGrad(true);
    try (var _ = MemoryScope.open()) {
      weight.mul(3).sum().backward();
      MemoryScope.keep(weight.grad());
    }
    for (int pass = 0; pass < 2; pass++) {
      try (var _ = MemoryScope.open()) {
        weight.mul(3).sum().backward();
      }
    }
    assertArrayEquals(new float[] {9, 9}, weight.grad().toFloatArray());
  }

  @Test
  void releasedTensorsPrintAndRefuseKeep() {
    Tensor released;
    try (var _ = MemoryScope.open()) {
      released = onDevice(1, 2);
    }
    assertEquals("Tensor([2], emulated, released)", released.toString());
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> MemoryScope.keep(released));
    assertTrue(e.getMessage().contains("before its memory scope closes"), e.getMessage());
  }

  @Test
  void collectorFreesUnreachableInOpenScope() throws InterruptedException {
    try (var _ = MemoryScope.open()) {
      long before = stats().bytesInUse();
      for (int i = 0; i < 8; i++) {
        Tensor.zeros(DType.FLOAT32, EMULATED, 1 << 16);
      }
      long filled = stats().bytesInUse();
      assertTrue(filled > before);
      long deadline = System.nanoTime() + 10_000_000_000L;
      while (stats().bytesInUse() >= filled && System.nanoTime() < deadline) {
        System.gc();
        Thread.sleep(20);
      }
      assertTrue(stats().bytesInUse() < filled, "no block came back while the scope was open");
    }
  }

  @Test
  void storageTakenOverBySetStorageIsKept() {
    Tensor parameter = Tensor.of(new float[] {1, 2}, 2);
    try (var _ = MemoryScope.open()) {
      parameter.setStorage(onDevice(5, 6).storage());
    }
    assertArrayEquals(new float[] {5, 6}, parameter.toFloatArray());
  }

  @Test
  void otherThreadsAllocateOutsideTheScope() throws InterruptedException {
    AtomicReference<Tensor> fromThread = new AtomicReference<>();
    try (var scope = MemoryScope.open()) {
      Thread worker = new Thread(() -> fromThread.set(onDevice(7, 8)));
      worker.start();
      worker.join();
      assertEquals(0, scope.ownedStorages());
    }
    assertArrayEquals(new float[] {7, 8}, fromThread.get().toFloatArray());
  }

  @Test
  void outerCloseClosesAnInnerScopeLeftOpen() {
    MemoryScope outer = MemoryScope.open();
    Tensor inOuter = onDevice(1);
    MemoryScope.open();
    Tensor inInner = onDevice(2);
    IllegalStateException e = assertThrows(IllegalStateException.class, outer::close);
    assertTrue(e.getMessage().contains("left open"), e.getMessage());
    assertThrows(IllegalStateException.class, inOuter::item);
    assertThrows(IllegalStateException.class, inInner::item);
    outer.close();

    // No scope is open on this thread any more, so this tensor outlives a scope opened later.
    Tensor afterwards = onDevice(3);
    try (var scope = MemoryScope.open()) {
      assertEquals(0, scope.ownedStorages());
    }
    assertEquals(3.0, afterwards.item());
  }

  @Test
  void anotherThreadCannotClose() throws InterruptedException {
    AtomicReference<Exception> fromThread = new AtomicReference<>();
    try (var scope = MemoryScope.open()) {
      Tensor mine = onDevice(4);
      Thread other =
          new Thread(
              () -> {
                try {
                  scope.close();
                } catch (IllegalStateException wrongThread) {
                  fromThread.set(wrongThread);
                }
              });
      other.start();
      other.join();
      assertTrue(fromThread.get().getMessage().contains("thread that opened it"));
      assertEquals(4.0, mine.item());
    }
  }
}
