package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.tensor.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tests the CUDA availability check: on this machine's real driver, and through a scripted probe
 * for every reason that a GPU machine may give.
 */
class CudaAvailabilityTest {

  private static final byte[] FATBIN = {1, 2, 3};

  @TempDir Path folder;
  private static final long TIMEOUT_MILLIS = 5_000;

  /** A probe whose every step succeeds unless a test changes one field. */
  private static class ScriptedProbe implements DriverProbe {
    String driverError;
    Path driverFile;
    String bindingError;
    int initResult;
    int deviceCount = 1;
    long initDelayMillis;

    @Override
    public String loadDriverLibrary() {
      return driverError;
    }

    @Override
    public Path findDriverLibrary() {
      return driverFile;
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
    assertTrue(availability.message().contains("reboot so that the kernel module"));
    assertFalse(availability.message().contains("so so"), availability.message());
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
    assertTrue(message.contains("this machine has 2 CUDA devices, cuda:0 to cuda:1"), message);
    assertTrue(message.endsWith("; pick one of those"), message);
  }

  @Test
  void oneDeviceReadsNaturally() {
    CudaAvailability availability = check(1, scriptedWithDevices(1), FATBIN);

    assertFalse(availability.usable());
    assertEquals(
        "CUDA device cuda:1 is not usable: device cuda:1 does not exist: this machine has one"
            + " CUDA device, cuda:0; use cuda:0",
        availability.message());
  }

  @Test
  void missingDriverSaysNotInstalled() {
    ScriptedProbe probe = new ScriptedProbe();
    probe.driverError = "Cannot open library: libcuda.so.1";

    String message = check(0, probe, FATBIN).message();

    assertTrue(message.contains("libcuda.so.1 was not found, so the NVIDIA driver"), message);
    assertTrue(message.contains("(Cannot open library: libcuda.so.1)"), message);
  }

  @Test
  void garbageDriverFileIsNamedWithReason() throws IOException {
    ScriptedProbe probe = new ScriptedProbe();
    probe.driverError = "Cannot open library: libcuda.so.1";
    probe.driverFile = Files.writeString(folder.resolve("libcuda.so.1"), "not a library");

    String message = check(0, probe, FATBIN).message();

    assertTrue(
        message.contains(
            "libcuda.so.1 was found at "
                + probe.driverFile
                + " but could not be loaded: the file is not an ELF shared library"),
        message);
    assertFalse(message.contains("was not found"), message);
    assertTrue(message.contains("Reinstall the NVIDIA driver"), message);
  }

  @Test
  void emptyDriverFileIsNamed() throws IOException {
    ScriptedProbe probe = new ScriptedProbe();
    probe.driverError = "Cannot open library: libcuda.so.1";
    probe.driverFile = Files.write(folder.resolve("libcuda.so.1"), new byte[0]);

    String message = check(0, probe, FATBIN).message();

    assertTrue(message.contains("the file is empty (0 bytes)"), message);
  }

  @Test
  void driverFileRejectedByLinkerPointsToLdd() throws IOException {
    ScriptedProbe probe = new ScriptedProbe();
    probe.driverError = "Cannot open library: libcuda.so.1";
    // The ELF header of this JVM's own libjvm.so, for this processor, without the rest of the file
    // passes the file check, so only the dynamic linker could report the cause.
    Path libjvm = Path.of(System.getProperty("java.home"), "lib", "server", "libjvm.so");
    byte[] header = Arrays.copyOf(Files.readAllBytes(libjvm), 64);
    probe.driverFile = Files.write(folder.resolve("libcuda.so.1"), header);

    String message = check(0, probe, FATBIN).message();

    assertTrue(
        message.contains(
            "the dynamic linker rejected it (Cannot open library: libcuda.so.1), and ldd "
                + probe.driverFile),
        message);
  }

  @Test
  void failuresLeaveOutCpuAdvice() {
    ScriptedProbe missingDriver = new ScriptedProbe();
    missingDriver.driverError = "Cannot open library: libcuda.so.1";
    ScriptedProbe noBindings = new ScriptedProbe();
    noBindings.bindingError = "UnsatisfiedLinkError";
    ScriptedProbe failedInit = new ScriptedProbe();
    failedInit.initResult = 803;
    ScriptedProbe noDevice = new ScriptedProbe();
    noDevice.initResult = 100;

    for (ScriptedProbe probe : List.of(missingDriver, noBindings, failedInit, noDevice)) {
      String message = check(0, probe, FATBIN).message();
      assertFalse(message.contains("CPU"), message);
      assertFalse(message.endsWith("."), message);
    }
    String noFatbin = check(0, new ScriptedProbe(), null).message();
    assertFalse(noFatbin.contains("CPU"), noFatbin);
    String outOfRange = check(2, scriptedWithDevices(1), FATBIN).message();
    assertFalse(outOfRange.contains("CPU"), outOfRange);
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
