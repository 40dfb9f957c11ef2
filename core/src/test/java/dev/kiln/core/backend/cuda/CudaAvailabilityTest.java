package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.tensor.Device;
import org.junit.jupiter.api.Test;

/**
 * Tests the CUDA availability check: on this machine's real driver, and through a scripted probe
 * for every reason that a GPU machine may give.
 */
class CudaAvailabilityTest {

  private static final byte[] FATBIN = {1, 2, 3};
  private static final long TIMEOUT_MILLIS = 5_000;

  /** A probe whose every step succeeds unless a test changes one field. */
  private static class ScriptedProbe implements DriverProbe {
    String driverError;
    String bindingError;
    int initResult;
    int deviceCount = 1;
    long initDelayMillis;

    @Override
    public String loadDriverLibrary() {
      return driverError;
    }

    @Override
    public String loadBindings() {
      return bindingError;
    }

    @Override
    public int initialize() {
      if (initDelayMillis > 0) {
        try {
          Thread.sleep(initDelayMillis);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      return initResult;
    }

    @Override
    public int deviceCount() {
      return deviceCount;
    }

    @Override
    public String deviceName(int index) {
      return "Test GPU " + index;
    }

    @Override
    public int driverVersion() {
      return 13000;
    }

    @Override
    public String errorName(int result) {
      return "CUDA_ERROR_CODE_" + result;
    }
  }

  private static CudaAvailability check(int index, ScriptedProbe probe, byte[] fatbin) {
    return CudaAvailability.check(index, probe, () -> fatbin, TIMEOUT_MILLIS);
  }

  @Test
  void realCheckReturnsQuickly() {
    long start = System.nanoTime();
    CudaAvailability availability = CudaAvailability.check(0);
    double seconds = (System.nanoTime() - start) / 1e9;

    assertTrue(seconds < 10, "the check took " + seconds + " s");
    assertEquals(new Device(Device.Kind.CUDA, 0), availability.device());
    assertFalse(availability.message().isBlank());
  }

  @Test
  void realCheckNamesMissingDriver() {
    assumeTrue(
        new DriverProbe.Real().loadDriverLibrary() != null,
        "libcuda.so.1 is installed here, so the missing-driver reason cannot show");

    CudaAvailability availability = CudaAvailability.check(0);

    assertFalse(availability.usable());
    String message = availability.message();
    assertTrue(message.startsWith("CUDA device cuda:0 is not usable"), message);
    assertTrue(message.contains("libcuda.so.1 was not found"), message);
    assertTrue(message.contains("install the NVIDIA driver"), message);
    assertTrue(message.contains("run on the CPU instead"), message);
  }

  @Test
  void realBindingsFailWithoutThrowing() {
    DriverProbe.Real probe = new DriverProbe.Real();
    assumeTrue(
        probe.loadDriverLibrary() != null,
        "libcuda.so.1 is installed here, so JCuda's library may load");

    // The first call fails in the static initializer, later calls with NoClassDefFoundError.
    String first = probe.loadBindings();
    String second = probe.loadBindings();

    assertNotNull(first, "the first load must report a failure");
    assertTrue(first.contains("libcuda.so.1"), "first load: " + first);
    assertNotNull(second, "the second load must report a failure");
    assertFalse(second.isBlank(), "second load: " + second);
  }

  @Test
  void missingBindingsGiveLoaderMessage() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.bindingError = "UnsatisfiedLinkError: no libJCudaDriver in jar";

    CudaAvailability availability = check(0, probe, FATBIN);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("JCuda's native library failed to load"));
    assertTrue(availability.message().contains("no libJCudaDriver in jar"));
  }

  @Test
  void failedInitNamesError() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.initResult = 803;

    CudaAvailability availability = check(0, probe, FATBIN);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("cuInit failed with CUDA_ERROR_CODE_803"));
    assertTrue(availability.message().contains("reboot"));
  }

  @Test
  void initWithoutDeviceSaysNoDevices() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.initResult = 100; // CUDA_ERROR_NO_DEVICE

    CudaAvailability availability = check(0, probe, FATBIN);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("sees no CUDA device"));
    assertTrue(availability.message().contains("CUDA_VISIBLE_DEVICES"));
  }

  @Test
  void zeroDevicesSaysNoDevices() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.deviceCount = 0;

    CudaAvailability availability = check(0, probe, FATBIN);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("sees no CUDA device"));
  }

  @Test
  void indexOutOfRangeNamesValidRange() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.deviceCount = 2;

    CudaAvailability availability = check(3, probe, FATBIN);

    assertFalse(availability.usable());
    String message = availability.message();
    assertTrue(message.contains("device cuda:3 does not exist"), message);
    assertTrue(message.contains("2 CUDA device(s), cuda:0 to cuda:1"), message);
  }

  @Test
  void missingFatbinSaysNvccWasAbsent() {
    CudaAvailability availability = check(0, new ScriptedProbe(), null);

    assertFalse(availability.usable());
    String message = availability.message();
    assertTrue(message.contains("no fatbin is built into the jar"), message);
    assertTrue(message.contains(CudaAvailability.FATBIN_RESOURCE), message);
    assertTrue(message.contains("nvcc was absent"), message);
  }

  @Test
  void emptyFatbinCountsAsMissing() {
    CudaAvailability availability = check(0, new ScriptedProbe(), new byte[0]);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("no fatbin"));
  }

  @Test
  void completeChainIsUsable() {
    CudaAvailability availability = check(1, scriptedWithDevices(2), FATBIN);

    assertTrue(availability.usable(), availability.message());
    assertEquals("cuda:1: Test GPU 1, driver supports CUDA 13.0", availability.message());
  }

  @Test
  void hungDriverTimesOut() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.initDelayMillis = 20_000;

    long start = System.nanoTime();
    CudaAvailability availability = CudaAvailability.check(0, probe, () -> FATBIN, 200);
    double seconds = (System.nanoTime() - start) / 1e9;

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("did not respond within 200 ms"));
    assertTrue(seconds < 5, "the check waited " + seconds + " s");
  }

  @Test
  void probeExceptionBecomesReason() {
    ScriptedProbe probe =
        new ScriptedProbe() {
          @Override
          public int deviceCount() {
            throw new IllegalStateException("driver exploded");
          }
        };

    CudaAvailability availability = check(0, probe, FATBIN);

    assertFalse(availability.usable());
    assertTrue(availability.message().contains("failed unexpectedly"));
    assertTrue(availability.message().contains("driver exploded"));
  }

  private static ScriptedProbe scriptedWithDevices(int count) {
    ScriptedProbe probe = new ScriptedProbe();
    probe.deviceCount = count;
    return probe;
  }
}
