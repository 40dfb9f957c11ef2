package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Gradient clipping on the {@code emulated} device, against the same clipping on the CPU. */
class DeviceGradClipTest {
  private static final Device EMULATED = Device.parse("emulated");

  /**
   * Relative difference allowed between norms and scaled gradients from the CPU and the device. The
   * device sums float32 squares in float32, where the CPU sums in double. Over a few hundred
   * elements of order 1 the rounding stays below about 1e-6 of the sum.
   */
  private static final double RELATIVE_TOLERANCE = 1e-5;

  private static Tensor withGrad(Device device, float... grad) {
    Tensor param = Tensor.zeros(DType.FLOAT32, device, grad.length).requiresGrad(true);
    param.setGrad(Tensor.of(grad, grad.length).to(device));
    return param;
  }

  /** Parameters with random gradients of several shapes, on {@code device}. */
  private static List<Tensor> randomGrads(Device device) {
    Generator g = new Generator(5);
    List<Tensor> params = new ArrayList<>();
    for (int[] shape : new int[][] {{8, 9}, {33}, {2, 3, 4, 5}}) {
      Tensor param = Tensor.zeros(DType.FLOAT32, device, shape).requiresGrad(true);
      Tensor grad = Init.uniform(Tensor.zeros(DType.FLOAT32, shape), -2, 2, g);
      param.setGrad(grad.to(device));
      params.add(param);
    }
    return params;
  }

  private static void assertGradsClose(List<Tensor> expected, List<Tensor> actual) {
    for (int i = 0; i < expected.size(); i++) {
      Tensor grad = actual.get(i).grad();
      assertEquals(EMULATED, grad.device(), "gradient " + i + " left the device");
      float[] want = expected.get(i).grad().toFloatArray();
      float[] got = grad.toFloatArray();
      for (int j = 0; j < want.length; j++) {
        double tolerance = RELATIVE_TOLERANCE * Math.abs(want[j]) + 1e-7;
        assertEquals(want[j], got[j], tolerance, "gradient " + i + "[" + j + "]");
      }
    }
  }

  @Test
  void clipNormOnDeviceMatchesCpu() {
    List<Tensor> onCpu = randomGrads(Device.CPU);
    List<Tensor> onDevice = randomGrads(EMULATED);

    double cpuNorm = GradClip.clipGradNorm(onCpu, 1.0);
    double deviceNorm = GradClip.clipGradNorm(onDevice, 1.0);

    assertTrue(cpuNorm > 1, "the test needs gradients above the limit, got norm " + cpuNorm);
    assertEquals(cpuNorm, deviceNorm, RELATIVE_TOLERANCE * cpuNorm);
    assertGradsClose(onCpu, onDevice);
  }

  @Test
  void clipNormOverTwoDevices() {
    // sqrt(3² + 4² + 12²) = 13
    List<Tensor> params = List.of(withGrad(Device.CPU, 3, 4), withGrad(EMULATED, 12));

    double norm = GradClip.clipGradNorm(params, 1.3);

    assertEquals(13.0, norm, 1e-6);
    assertArrayEquals(new float[] {0.3f, 0.4f}, params.get(0).grad().toFloatArray(), 1e-6f);
    assertArrayEquals(new float[] {1.2f}, params.get(1).grad().toFloatArray(), 1e-6f);
    assertEquals(EMULATED, params.get(1).grad().device());
  }

  @Test
  void clipNormUnderLimitKeepsDeviceGradients() {
    List<Tensor> params = randomGrads(EMULATED);
    Tensor before = params.get(0).grad();

    GradClip.clipGradNorm(params, 1e6);

    assertSame(before, params.get(0).grad());
  }

  @Test
  void infiniteDeviceGradientIsReported() {
    List<Tensor> params = List.of(withGrad(EMULATED, 1, Float.POSITIVE_INFINITY));

    IllegalStateException error =
        assertThrows(IllegalStateException.class, () -> GradClip.clipGradNorm(params, 1));

    assertTrue(error.getMessage().contains("Infinity"), error.getMessage());
  }

  @Test
  void clipValueOnDeviceMatchesCpu() {
    List<Tensor> onCpu = randomGrads(Device.CPU);
    List<Tensor> onDevice = randomGrads(EMULATED);
    Tensor untouched = onDevice.get(0).grad();
    float[] original = untouched.toFloatArray();

    GradClip.clipGradValue(onCpu, 0.5);
    GradClip.clipGradValue(onDevice, 0.5);

    for (int i = 0; i < onCpu.size(); i++) {
      assertEquals(EMULATED, onDevice.get(i).grad().device());
      assertArrayEquals(
          onCpu.get(i).grad().toFloatArray(),
          onDevice.get(i).grad().toFloatArray(),
          "gradient " + i);
    }
    // Clipping replaces the gradient, so a reference taken before it still reads the old values.
    assertArrayEquals(original, untouched.toFloatArray());
  }
}
