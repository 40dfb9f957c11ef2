package dev.kiln.core.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.backend.device.DeviceWork;
import dev.kiln.core.ops.LossOps;
import dev.kiln.core.ops.MatMul;
import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Tests how a leaf receives its gradient: a gradient that nothing else shares becomes the leaf's
 * own without a copy, and one that another leaf, a pending gradient or the caller shares is copied.
 */
class LeafGradientTest {
  private static final Device EMULATED = Device.parse("emulated");

  private static Tensor leaf(Device device, float... values) {
    return Tensor.of(values, values.length).to(device).requiresGrad(true);
  }

  @Test
  void unsharedGradientNeedsNoCopy() {
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    try (var _ = MemoryScope.open()) {
      Tensor x = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3).to(EMULATED);
      Tensor weight = Tensor.of(new float[] {1, 0, -1, 2, 1, 0}, 2, 3).to(EMULATED);
      weight.requiresGrad(true);
      Tensor bias = leaf(EMULATED, 0.5f, -0.5f);
      Tensor target = Tensor.of(new float[] {0, 1, 2, 3}, 2, 2).to(EMULATED);
      Tensor loss = LossOps.mseLoss(MatMul.linear(x, weight, bias), target, Reduction.SUM);

      DeviceWork before = runtime.work();
      loss.backward();
      DeviceWork work = runtime.work().minus(before);

      assertEquals(0, work.copiesWithinDevice(), "device copies in backward");
      // out = [[-1.5, 3.5], [-1.5, 12.5]], so d(loss)/d(out) = 2 (out - target) =
      // [[-3, 5], [-7, 19]].
      assertArrayEquals(new float[] {-10, 24}, bias.grad().toFloatArray(), "bias gradient");
      assertArrayEquals(
          new float[] {-31, -41, -51, 81, 105, 129},
          weight.grad().toFloatArray(),
          "weight gradient");
    }
  }

  @Test
  void gradientOfTwoLeavesIsCopiedForOne() {
    for (Device device : new Device[] {Device.CPU, EMULATED}) {
      try (var _ = MemoryScope.open()) {
        Tensor a = leaf(device, -1, 2, 3);
        Tensor b = leaf(device, 0, -5, 1);
        // add passes relu's gradient on to both leaves as one tensor.
        a.add(b).relu().sum().backward();

        assertNotSame(a.grad().storage(), b.grad().storage(), device + ": shared storage");
        a.grad().storage().set(0, 99);
        assertArrayEquals(new float[] {0, 0, 1}, b.grad().toFloatArray(), device + ": b");
        assertArrayEquals(new float[] {99, 0, 1}, a.grad().toFloatArray(), device + ": a");
      }
    }
  }

  @Test
  void callersGradientIsCopied() {
    for (Device device : new Device[] {Device.CPU, EMULATED}) {
      try (var _ = MemoryScope.open()) {
        Tensor a = leaf(device, 1, 2, 3, 4);
        Tensor upstream = Tensor.of(new float[] {5, 6, 7, 8}, 2, 2).to(device);
        // reshape passes a view of the caller's gradient down to the leaf.
        a.reshape(2, 2).backward(upstream);

        assertNotSame(upstream.storage(), a.grad().storage(), device + ": shared storage");
        upstream.storage().set(0, -1);
        assertArrayEquals(new float[] {5, 6, 7, 8}, a.grad().toFloatArray(), device + ": a");
      }
    }
  }
}
