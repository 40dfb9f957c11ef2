package dev.kiln.core.backend.cuda;

import dev.kiln.core.backend.cuda.libraries.LibraryDiscovery;
import dev.kiln.core.tensor.Device;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import jcuda.driver.CUresult;

/**
 * Result of checking whether a CUDA device is usable, and if not, the reason, in words that tell
 * the user what to do.
 *
 * <p>{@link #check(int)} walks the chain that a GPU run needs, in order, and stops at the first
 * missing link: the NVIDIA driver library {@code libcuda.so.1}, JCuda's JNI library, {@code
 * cuInit}, a device of the requested index, and the kernels' fatbin in the jar. It reports every
 * failure as a reason rather than an exception, and it gives up on a driver that does not respond
 * within {@value #TIMEOUT_SECONDS} seconds.
 *
 * <p>A reason names what failed and how to fix it, without a final period. It leaves out running on
 * the CPU instead, because only the caller can tell whether that is possible or already done:
 * {@code --device auto} has switched to the CPU by the time it prints the reason.
 *
 * @param device the device that was checked, {@code cuda:N}
 * @param usable whether kiln can run on it
 * @param message the device's name and driver version when usable, else the reason and what to do
 */
public record CudaAvailability(Device device, boolean usable, String message) {

  /** Class-path resource of the kernels' fatbin, which the kernels module builds with nvcc. */
  public static final String FATBIN_RESOURCE = "dev/kiln/kernels/kiln.fatbin";

  /**
   * Seconds that the check waits for the driver. {@code cuInit} takes seconds on machines with many
   * GPUs and no persistence daemon, so the limit is generous. A hung driver still does not hang
   * kiln.
   */
  public static final long TIMEOUT_SECONDS = 30;

  /**
   * Checks whether {@code cuda:deviceIndex} is usable, reading the fatbin from the class path.
   *
   * @param deviceIndex the N of {@code cuda:N}, 0 or more
   * @throws IllegalArgumentException if {@code deviceIndex} is negative, which no device name
   *     parses to
   */
  public static CudaAvailability check(int deviceIndex) {
    return check(
        deviceIndex,
        new DriverProbe.Real(),
        CudaAvailability::readFatbin,
        TimeUnit.SECONDS.toMillis(TIMEOUT_SECONDS));
  }

  /**
   * Checks {@code cuda:deviceIndex} with the given driver calls and fatbin source. The tests use
   * this method to play each failure.
   *
   * @param fatbin returns the fatbin's bytes, or null where the jar has none
   * @param timeoutMillis how long to wait for the probe before reporting a hung driver
   */
  static CudaAvailability check(
      int deviceIndex, DriverProbe probe, Supplier<byte[]> fatbin, long timeoutMillis) {
    Device device = new Device(Device.Kind.CUDA, deviceIndex);
    FutureTask<CudaAvailability> task = new FutureTask<>(() -> walkChain(device, probe, fatbin));
    Thread thread = Thread.ofPlatform().daemon().name("kiln-cuda-check").start(task);
    try {
      return task.get(timeoutMillis, TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      thread.interrupt();
      return unusable(
          device,
          "the CUDA driver did not respond within "
              + timeoutMillis
              + " ms: check the GPU with nvidia-smi, and that no other process holds it");
    } catch (ExecutionException e) {
      return unusable(
          device,
          "the CUDA check failed unexpectedly ("
              + e.getCause()
              + "): report this with the output of nvidia-smi");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return unusable(device, "the CUDA check was interrupted");
    }
  }

  private static CudaAvailability walkChain(
      Device device, DriverProbe probe, Supplier<byte[]> fatbin) {
    String driverError = probe.loadDriverLibrary();
    if (driverError != null) {
      return unusable(device, driverLoadFailure(driverError, probe.findDriverLibrary()));
    }

    String bindingError = probe.loadBindings();
    if (bindingError != null) {
      return unusable(
          device,
          "JCuda's native library failed to load ("
              + bindingError
              + "): check that jcuda-natives for linux-x86_64 is on the class path and that the"
              + " temporary directory is writable");
    }

    int init = probe.initialize();
    if (init == CUresult.CUDA_ERROR_NO_DEVICE) {
      return noDevices(device, probe.errorName(init));
    }
    if (init != CUresult.CUDA_SUCCESS) {
      return unusable(
          device,
          "cuInit failed with "
              + probe.errorName(init)
              + ": the driver is installed but cannot start. After a driver update, reboot so"
              + " that the kernel module matches the library. Check that this user can open"
              + " /dev/nvidia*, and see nvidia-smi");
    }

    int count = probe.deviceCount();
    if (count == 0) {
      return noDevices(device, "cuDeviceGetCount returned 0");
    }
    if (device.index() >= count) {
      String choice = count == 1 ? "use cuda:0" : "pick one of those";
      return unusable(
          device, "device " + device + " does not exist: " + deviceRange(count) + "; " + choice);
    }

    byte[] image = fatbin.get();
    if (image == null || image.length == 0) {
      return unusable(
          device,
          "no fatbin is built into the jar (class-path resource "
              + FATBIN_RESOURCE
              + " is missing or empty) because nvcc was absent when kiln was built: rebuild kiln"
              + " where the CUDA toolkit's nvcc is on the PATH");
    }

    int version = probe.driverVersion();
    String description =
        String.format(
            "%s: %s, driver supports CUDA %d.%d",
            device, probe.deviceName(device.index()), version / 1000, version % 1000 / 10);
    return new CudaAvailability(device, true, description);
  }

  private static CudaAvailability noDevices(Device device, String detail) {
    return unusable(
        device,
        "the NVIDIA driver is installed but sees no CUDA device ("
            + detail
            + "): check CUDA_VISIBLE_DEVICES and nvidia-smi");
  }

  /**
   * Returns the reason for a {@code libcuda.so.1} that did not load: not installed where the
   * linker's folders have no such file, else the file and why it cannot be loaded.
   *
   * @param loaderMessage the JDK's message, which names the library but not the linker's reason
   * @param found the file in the linker's folders, or null
   */
  static String driverLoadFailure(String loaderMessage, Path found) {
    if (found == null) {
      return "libcuda.so.1 was not found, so the NVIDIA driver is not installed or not on the"
          + " library path ("
          + loaderMessage
          + "): install the NVIDIA driver and check it with nvidia-smi";
    }
    String problem = LibraryDiscovery.problemWith(found);
    String why =
        problem != null
            ? "the file " + problem
            : "the dynamic linker rejected it ("
                + loaderMessage
                + "), and ldd "
                + found
                + " shows which libraries it lacks";
    return "libcuda.so.1 was found at "
        + found
        + " but could not be loaded: "
        + why
        + ". Reinstall the NVIDIA driver, or remove that file from the library path, and check"
        + " the driver with nvidia-smi";
  }

  /** Returns "this machine has one CUDA device, cuda:0" or the range of several. */
  static String deviceRange(int count) {
    if (count == 1) {
      return "this machine has one CUDA device, cuda:0";
    }
    return "this machine has " + count + " CUDA devices, cuda:0 to cuda:" + (count - 1);
  }

  private static CudaAvailability unusable(Device device, String reason) {
    return new CudaAvailability(
        device, false, "CUDA device " + device + " is not usable: " + reason);
  }

  /**
   * Reads the kernels' fatbin from the class path.
   *
   * @return the bytes, or null where the resource is missing
   * @throws UncheckedIOException if the resource exists but cannot be read
   */
  public static byte[] readFatbin() {
    ClassLoader loader = CudaAvailability.class.getClassLoader();
    try (InputStream in = loader.getResourceAsStream(FATBIN_RESOURCE)) {
      return in == null ? null : in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("failed to read class-path resource " + FATBIN_RESOURCE, e);
    }
  }
}
