package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.kiln.core.tensor.Device;
import org.junit.jupiter.api.Test;

/** Tests the resolution of the device name {@code auto}. */
class AutoDeviceTest {

  private static final Device CUDA_0 = new Device(Device.Kind.CUDA, 0);

  @Test
  void unusableGpuFallsBackToCpu() {
    CudaAvailability missing =
        new CudaAvailability(CUDA_0, false, "CUDA device cuda:0 is not usable: no driver");

    AutoDevice.Choice choice = AutoDevice.choose(missing);

    assertEquals(Device.CPU, choice.device());
    assertEquals("CUDA device cuda:0 is not usable: no driver", choice.reason());
  }

  @Test
  void usableGpuIsChosen() {
    CudaAvailability present = new CudaAvailability(CUDA_0, true, "cuda:0: Test GPU");

    AutoDevice.Choice choice = AutoDevice.choose(present);

    assertEquals(CUDA_0, choice.device());
    assertEquals("cuda:0: Test GPU", choice.reason());
  }

  @Test
  void resolveAgreesWithCheck() {
    CudaAvailability availability = CudaAvailability.check(0);

    AutoDevice.Choice choice = AutoDevice.resolve();

    assertEquals(availability.usable() ? CUDA_0 : Device.CPU, choice.device());
    assertEquals(availability.message(), choice.reason());
  }

  @Test
  void resolveIsDecidedOnce() {
    assertSame(AutoDevice.resolve(), AutoDevice.resolve());
  }
}
