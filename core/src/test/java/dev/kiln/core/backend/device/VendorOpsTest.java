package dev.kiln.core.backend.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.ops.Convolution;
import dev.kiln.core.ops.Dropout;
import dev.kiln.core.ops.MatMul;
import dev.kiln.core.ops.Pooling;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The tensor ops' cuBLAS and cuDNN routes, from the op down to the library call, on the emulated
 * device with the host stand-ins of {@link HostStandInVendors} in place of the libraries.
 *
 * <p>{@link VendorRoutingTest} checks the launchers. This test checks what the ops add above them:
 * which route an op takes, the buffers it allocates for the library (such as cuDNN's dropout
 * reserve), and the backward closures. Each test swaps the emulated device's kernels for a set
 * built over the stand-ins and puts the previous set back afterwards.
 */
class VendorOpsTest {
  private static final Device EMULATED = Device.parse("emulated");

  private final HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
  private final HostStandInVendors.Dnn dnn = new HostStandInVendors.Dnn();
  private final Random random = new Random(DeviceTestSupport.SEED);
  private DeviceKernels previous;

  @BeforeEach
  void useStandIns() {
    DeviceRuntime runtime = DeviceKernels.of(EMULATED).runtime();
    previous =
        DeviceKernels.replace(
            EMULATED, DeviceKernels.over(runtime, blas, dnn, "host stand-ins for the libraries"));
  }

  @AfterEach
  void restoreKernels() {
    DeviceKernels.replace(EMULATED, previous);
  }

  @Test
  void dropoutTakesCudnnWithItsReserve() {
    int n = 4096;
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      // Away from zero, so that an output of zero means a dropped element.
      values[i] = 0.5f + random.nextFloat();
    }
    float[] upstream = DeviceTestSupport.randomFloats(random, n);
    long before = DeviceKernels.of(EMULATED).runtime().allocator().stats().bytesInUse();
    float[] outputs;
    float[] gradients;
    try (var _ = MemoryScope.open()) {
      Tensor x = Tensor.of(values, n).to(EMULATED).requiresGrad(true);
      Tensor out = Dropout.dropout(x, 0.25, true, new Generator(3));
      out.backward(Tensor.of(upstream, n).to(EMULATED));
      outputs = out.toFloatArray();
      gradients = x.grad().toFloatArray();
    }

    assertEquals(
        List.of(
            "dropoutForward p=0.25 seed=" + firstSeed(),
            "dropoutBackward p=0.25 seed=" + firstSeed()),
        dnn.calls);
    int kept = 0;
    for (int i = 0; i < n; i++) {
      boolean dropped = outputs[i] == 0;
      double scale = dropped ? 0 : 1 / 0.75;
      kept += dropped ? 0 : 1;
      assertEquals(values[i] * scale, outputs[i], 1e-5, "output " + i);
      // The gradient comes from the mask in the reserve that the forward pass wrote.
      assertEquals(upstream[i] * scale, gradients[i], 1e-5, "gradient " + i);
    }
    // binomial(4096, 0.75) has a standard deviation of about 28, so 0.75 ± 0.04 is 6 of them.
    assertTrue(Math.abs(kept / (double) n - 0.75) < 0.04, "kept " + kept + " of " + n);
    // The reserve, like every tensor of the step, went back to the cache with the scope.
    assertEquals(
        before, DeviceKernels.of(EMULATED).runtime().allocator().stats().bytesInUse(), "bytes");
  }

  @Test
  void dropoutNearOneAndEmptyStayOnKiln() {
    Tensor x = Tensor.of(new float[] {1, 2, 3}, 3).to(EMULATED);
    Tensor all = Dropout.dropout(x, 1 - 1e-9, true, new Generator(3));
    Tensor empty =
        Dropout.dropout(Tensor.of(new float[0], 0).to(EMULATED), 0.5, true, new Generator(3));

    assertEquals(List.of(), dnn.calls, "neither call may reach cuDNN");
    assertEquals(0, empty.numel());
    for (float value : all.toFloatArray()) {
      assertEquals(0f, value, "p = 1 - 1e-9 rounds to 1 as a float and drops everything");
    }
  }

  @Test
  void convolutionPoolingAndLinearTakeTheLibraries() {
    Tensor input = Tensor.of(DeviceTestSupport.randomFloats(random, 2 * 3 * 8 * 8), 2, 3, 8, 8);
    Tensor weight = Tensor.of(DeviceTestSupport.randomFloats(random, 4 * 3 * 3 * 3), 4, 3, 3, 3);
    Tensor bias = Tensor.of(DeviceTestSupport.randomFloats(random, 4), 4);
    Tensor dense = Tensor.of(DeviceTestSupport.randomFloats(random, 5 * 64), 5, 64);
    Function<Tensor[], Tensor> model =
        t -> {
          Tensor conv =
              Convolution.conv2d(
                  t[0], t[1], t[2], new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1});
          Tensor pooled =
              Pooling.maxPool2d(conv, new int[] {2, 2}, new int[] {2, 2}, new int[] {0, 0});
          return MatMul.linear(pooled.reshape(2, 64), t[3], null);
        };
    float[] expected = model.apply(new Tensor[] {input, weight, bias, dense}).toFloatArray();

    Tensor[] onDevice = {
      input.to(EMULATED), weight.to(EMULATED), bias.to(EMULATED), dense.to(EMULATED)
    };
    float[] actual = model.apply(onDevice).toFloatArray();

    assertEquals(expected.length, actual.length);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(
          expected[i], actual[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "output " + i);
    }
    assertTrue(dnn.calls.contains("convolutionForward"), "calls: " + dnn.calls);
    assertTrue(dnn.calls.contains("poolingForward MAX"), "calls: " + dnn.calls);
    assertTrue(blas.calls.contains("sgemm"), "calls: " + blas.calls);
  }

  @Test
  void linearWithNoInputFeaturesOnCublas() {
    // k = 0 gives row-major leading dimensions of 0, which cuBLAS rejects. The forward product is
    // the empty sum, so every output is the bias, and the backward products have n = 0 or k = 3.
    Tensor x = Tensor.zeros(DType.FLOAT32, 3, 0).to(EMULATED).requiresGrad(true);
    Tensor weight = Tensor.zeros(DType.FLOAT32, 2, 0).to(EMULATED).requiresGrad(true);
    Tensor bias = Tensor.of(new float[] {10, 20}, 2).to(EMULATED).requiresGrad(true);
    Tensor batched = Tensor.zeros(DType.FLOAT32, 2, 3, 0).to(EMULATED);
    Tensor right = Tensor.zeros(DType.FLOAT32, 2, 0, 4).to(EMULATED);

    Tensor out = MatMul.linear(x, weight, bias);
    out.sum().backward();
    Tensor product = MatMul.matmul(batched, right);

    assertArrayEquals(new float[] {10, 20, 10, 20, 10, 20}, out.toFloatArray(), 0f);
    assertArrayEquals(new float[] {3, 3}, bias.grad().toFloatArray(), 0f);
    assertArrayEquals(new float[2 * 3 * 4], product.toFloatArray(), 0f);
    assertTrue(blas.calls.contains("sgemm"), "calls: " + blas.calls);
    assertTrue(blas.calls.contains("sgemmStridedBatched"), "calls: " + blas.calls);
  }

  /** Returns the seed that the first dropout call draws from {@code new Generator(3)}. */
  private static long firstSeed() {
    return new Generator(3).nextLong();
  }
}
