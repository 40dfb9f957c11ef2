package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.backend.device.DeviceWork;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Tensors on the {@code emulated} device: moving them there and back, reading their values, the
 * errors for float64 and for operands on two devices, and gradients that flow back across {@code
 * to(Device)}. The ops themselves are compared with the CPU in {@code DeviceOpsTest}.
 */
class DeviceTensorTest {
  private static final Device EMULATED = Device.parse("emulated");

  @Test
  void roundTripKeepsEveryValue() {
    float[] values = {1.5f, -2.25f, 0f, -0f, Float.MAX_VALUE, Float.MIN_VALUE};
    Tensor host = Tensor.of(values, 2, 3);
    Tensor onDevice = host.to(EMULATED);
    assertEquals(EMULATED, onDevice.device());
    assertTrue(onDevice.storage() instanceof DeviceStorage);
    assertArrayEquals(new int[] {2, 3}, onDevice.shape());
    assertArrayEquals(values, onDevice.toFloatArray());
    Tensor back = onDevice.to(Device.CPU);
    assertEquals(Device.CPU, back.device());
    assertArrayEquals(values, back.toFloatArray());
    assertEquals(-2.25, onDevice.get(0, 1));
    assertSame(onDevice, onDevice.to(EMULATED));
  }

  @Test
  void zerosFullAndSetOnDevice() {
    Tensor zeros = Tensor.zeros(DType.FLOAT32, EMULATED, 3, 2);
    assertArrayEquals(new float[6], zeros.toFloatArray());
    Tensor sevens = Tensor.full(7, DType.FLOAT32, EMULATED, 4);
    assertArrayEquals(new float[] {7, 7, 7, 7}, sevens.toFloatArray());
    sevens.set(-1, 2);
    assertEquals(-1.0, sevens.get(2));
    assertEquals(7.0, Tensor.full(7, DType.FLOAT32, EMULATED).item());
  }

  @Test
  void fullOnDeviceTakesOneFill() {
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    DeviceWork before = runtime.work();
    Tensor halves = Tensor.full(0.5, DType.FLOAT32, EMULATED, 5, 3);
    DeviceWork work = runtime.work().minus(before);

    assertEquals(Map.of("kiln_layout_fill", 1L), work.launchesByKernel());
    float[] expected = new float[15];
    Arrays.fill(expected, 0.5f);
    assertArrayEquals(expected, halves.toFloatArray());
  }

  @Test
  void float64IsRejected() {
    Tensor doubles = Tensor.of(new double[] {1, 2}, 2);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> doubles.to(EMULATED));
    assertTrue(e.getMessage().contains("to(DType.FLOAT32)"), e.getMessage());
    Tensor onDevice = Tensor.of(new float[] {1, 2}, 2).to(EMULATED);
    e = assertThrows(IllegalArgumentException.class, () -> onDevice.to(DType.FLOAT64));
    assertTrue(e.getMessage().contains("float32"), e.getMessage());
  }

  @Test
  void mixedDevicesNameBoth() {
    Tensor host = Tensor.of(new float[] {1, 2}, 2);
    Tensor onDevice = host.to(EMULATED);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> host.add(onDevice));
    assertTrue(e.getMessage().contains("on cpu"), e.getMessage());
    assertTrue(e.getMessage().contains("on emulated"), e.getMessage());
  }

  @Test
  void arraysAreRejectedWithHint() {
    Tensor onDevice = Tensor.of(new float[] {1, 2}, 2).to(EMULATED);
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> onDevice.storage().floats());
    assertTrue(e.getMessage().contains("to(Device.CPU)"), e.getMessage());
  }

  @Test
  void gradientsCrossTheMove() {
    Tensor x = Tensor.of(new float[] {1, -2, 3}, 3).requiresGrad(true);
    Tensor y = x.to(EMULATED).mul(2).relu().sum();
    assertEquals(EMULATED, y.device());
    assertEquals(8.0, y.item());
    y.backward();
    assertEquals(Device.CPU, x.grad().device());
    assertArrayEquals(new float[] {2, 0, 2}, x.grad().toFloatArray());
  }

  @Test
  void unreachableBlocksReturn() {
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    long before = runtime.allocator().stats().bytesInUse();
    for (int i = 0; i < 4; i++) {
      Tensor.zeros(DType.FLOAT32, EMULATED, 1 << 16);
    }
    assertTrue(runtime.allocator().stats().bytesInUse() >= before + 4L * (1 << 18));
    // The tensors above are garbage now; the allocator's reclaimer must find them.
    assertTrue(DeviceStorage.collectUnreachable(runtime));
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (runtime.allocator().stats().bytesInUse() > before && System.nanoTime() < deadline) {
      DeviceStorage.collectUnreachable(runtime);
    }
    // Other tests' garbage may go back too, so the count can end below where it started.
    long after = runtime.allocator().stats().bytesInUse();
    assertTrue(after <= before, "bytes in use went from " + before + " to " + after);
  }

  @Test
  void heldBufferOutlivesItsTensor() {
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    // A launcher between its lookup of the buffer and its launch still references the buffer,
    // while the tensor is already unreachable.
    DeviceBuffer launcherBuffer =
        DeviceStorage.bufferOf(Tensor.zeros(DType.FLOAT32, EMULATED, 1 << 16));
    DeviceBuffer copy =
        new DeviceBuffer(
            launcherBuffer.address(), launcherBuffer.bytes(), launcherBuffer.allocation());
    for (int i = 0; i < 3; i++) {
      DeviceStorage.collectUnreachable(runtime);
    }
    runtime.allocator().requireInUse(launcherBuffer, "a buffer that a launcher still holds");

    launcherBuffer = null;
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (isInUse(runtime, copy) && System.nanoTime() < deadline) {
      DeviceStorage.collectUnreachable(runtime);
    }
    assertFalse(isInUse(runtime, copy), "the block stayed in use after its buffer was dropped");
  }

  private static boolean isInUse(DeviceRuntime runtime, DeviceBuffer buffer) {
    try {
      runtime.allocator().requireInUse(buffer, "a buffer");
      return true;
    } catch (IllegalStateException freed) {
      return false;
    }
  }

  @Test
  void opsCoverMoreThanOneGrid() {
    // A launch has at most 1024 blocks of 256 threads, so here each thread takes several elements.
    int n = 1024 * 256 * 3 + 17;
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = (i % 7) - 3;
    }
    float[] relu = Tensor.of(values, n).to(EMULATED).relu().toFloatArray();
    for (int i = 0; i < n; i++) {
      assertEquals(Math.max(values[i], 0), relu[i], "element " + i);
    }
    float[] sevens = Tensor.full(7, DType.FLOAT32, EMULATED, n).toFloatArray();
    for (int i = 0; i < n; i++) {
      assertEquals(7f, sevens[i], "element " + i);
    }
  }

  @Test
  void backwardRejectsForeignGradient() {
    Tensor p = Tensor.of(new float[] {1, 2, 3}, 3).to(EMULATED).requiresGrad(true);
    Tensor y = p.mul(2.0).sum();
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> y.backward(Tensor.scalar(1, DType.FLOAT32)));
    assertTrue(e.getMessage().contains("gradient is on cpu"), e.getMessage());
    assertTrue(e.getMessage().contains("output is on emulated"), e.getMessage());
    assertEquals(null, p.grad());
  }

  @Test
  void backwardFreesItsOwnGradients() {
    int n = 1 << 16;
    long block = dev.kiln.core.backend.cuda.CachingAllocator.sizeClass(4L * n);
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    Tensor x = Tensor.full(0.5, DType.FLOAT32, EMULATED, n).requiresGrad(true);
    Tensor y = x.mul(2).relu().mul(3).sum();
    long before = runtime.allocator().stats().bytesInUse();
    y.backward();
    long after = runtime.allocator().stats().bytesInUse();
    // Four gradients of n floats pass through the graph. Only the leaf's gradient stays, plus the
    // one-element seed and sums, so the growth stays below two blocks of n floats.
    assertTrue(after - before < 2 * block, "grew by " + (after - before) + " bytes");
    assertArrayEquals(Tensor.full(6, DType.FLOAT32, n).toFloatArray(), x.grad().toFloatArray());
  }

  @Test
  void backwardFreesSummedGradients() {
    // h feeds two products, so its gradient is the sum of two gradients of n floats, which are
    // used up once added.
    int n = 1 << 16;
    long block = dev.kiln.core.backend.cuda.CachingAllocator.sizeClass(4L * n);
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    Tensor x = Tensor.full(0.5, DType.FLOAT32, EMULATED, n).requiresGrad(true);
    Tensor h = x.mul(2);
    Tensor y = h.mul(3).add(h.mul(5)).sum();
    long before = runtime.allocator().stats().bytesInUse();
    y.backward();
    long after = runtime.allocator().stats().bytesInUse();
    // Only the leaf's gradient stays, plus the one-element seed and sums: below two blocks of n
    // floats.
    assertTrue(after - before < 2 * block, "grew by " + (after - before) + " bytes");
    assertArrayEquals(Tensor.full(16, DType.FLOAT32, n).toFloatArray(), x.grad().toFloatArray());
  }

  @Test
  void summandPassedToLaterInputStaysAlive() {
    // A custom op "twin" returns one tensor g as the gradient of both its inputs. Its first input a
    // already has a pending gradient, from a.mul(5), which backward visits first, so g is added to
    // it and used up as a summand while it still has to reach the second input b.
    Tensor x = Tensor.of(new float[] {1, 2, 3}, 3).to(EMULATED).requiresGrad(true);
    Tensor a = x.mul(2);
    Tensor b = x.mul(3);
    Tensor sum;
    try (var _ = GradMode.noGrad()) {
      sum = a.add(b);
    }
    Tensor twin = Autograd.record("twin", sum, grad -> twinGradients(grad), a, b);

    twin.add(a.mul(5)).sum().backward();

    // d/dx of (2x + 3x) + 5 * 2x is 15.
    assertArrayEquals(new float[] {15, 15, 15}, x.grad().toFloatArray());
  }

  private static Tensor[] twinGradients(Tensor grad) {
    Tensor g = grad.mul(1);
    return new Tensor[] {g, g};
  }

  @Test
  void backwardKeepsTheCallersGradient() {
    Tensor x = Tensor.of(new float[] {1, 2, 3, 4}, 4).to(EMULATED).requiresGrad(true);
    Tensor gradient = Tensor.of(new float[] {5, 6, 7, 8}, 2, 2).to(EMULATED);
    x.mul(3).reshape(2, 2).backward(gradient);
    assertArrayEquals(new float[] {5, 6, 7, 8}, gradient.toFloatArray());
    assertArrayEquals(new float[] {15, 18, 21, 24}, x.grad().toFloatArray());
  }

  @Test
  void retainedGraphRunsTwiceOnDevice() {
    Tensor x = Tensor.of(new float[] {1, -2, 3}, 3).to(EMULATED).requiresGrad(true);
    Tensor y = x.mul(2).relu().reshape(3, 1).sum();
    y.backward(null, true);
    y.backward(null, true);
    assertArrayEquals(new float[] {4, 0, 4}, x.grad().toFloatArray());
  }

  @Test
  void copiesStayOnDevice() {
    Tensor a = Tensor.of(new float[] {1, 2, 3}, 3).to(EMULATED);
    Tensor b = a.copy();
    a.set(9, 0);
    assertArrayEquals(new float[] {1, 2, 3}, b.toFloatArray());
    b.copyFrom(a);
    assertArrayEquals(new float[] {9, 2, 3}, b.toFloatArray());
  }

  @Test
  void copyAsMakesAFreshCopyOutsideTheGraph() {
    Tensor source = Tensor.of(new float[] {1.5f, -2}, 2).requiresGrad(true);

    Tensor sameOnCpu = source.copyAs(DType.FLOAT32, Device.CPU);
    assertTrue(sameOnCpu.storage() != source.storage());
    assertTrue(!sameOnCpu.requiresGrad());
    sameOnCpu.set(9, 0);
    assertEquals(1.5, source.get(0));

    Tensor onDevice = source.copyAs(DType.FLOAT32, EMULATED);
    assertEquals(EMULATED, onDevice.device());
    assertTrue(!onDevice.requiresGrad());
    Tensor backAsDoubles = onDevice.copyAs(DType.FLOAT64, Device.CPU);
    assertEquals(DType.FLOAT64, backAsDoubles.dtype());
    assertArrayEquals(new double[] {1.5, -2}, backAsDoubles.toDoubleArray());

    Tensor doubles = Tensor.of(new double[] {0.25, 4}, 2);
    assertArrayEquals(
        new float[] {0.25f, 4}, doubles.copyAs(DType.FLOAT32, EMULATED).toFloatArray());
    assertThrows(IllegalArgumentException.class, () -> doubles.copyAs(DType.FLOAT64, EMULATED));
  }
}
