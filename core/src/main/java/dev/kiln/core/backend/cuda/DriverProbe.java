package dev.kiln.core.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Path;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * The driver calls that {@link CudaAvailability} makes, behind an interface so that tests can play
 * every failure on a machine without a GPU.
 */
interface DriverProbe {

  /** Returns null when {@code libcuda.so.1} loads, else the dynamic loader's message. */
  String loadDriverLibrary();

  /**
   * Returns the {@code libcuda.so.1} file that the dynamic linker most likely tried, or null where
   * none exists in its folders. The check calls it only after loading failed, to tell a missing
   * driver from a file that cannot be loaded.
   */
  Path findDriverLibrary();

  /** Returns null when JCuda's JNI library loads, else the loader's message. */
  String loadBindings();

  /** Calls {@code cuInit(0)} and returns its {@code CUresult}. */
  int initialize();

  /** Returns the number of devices ({@code cuDeviceGetCount}), after a successful initialize. */
  int deviceCount();

  /** Returns the name of a device, such as {@code NVIDIA H200}. */
  String deviceName(int index);

  /** Returns the CUDA version that the driver supports, such as 13000. */
  int driverVersion();

  /** Returns the name of a {@code CUresult} code, such as {@code CUDA_ERROR_NO_DEVICE}. */
  String errorName(int result);

  /** The probe of this process's real driver, through JCuda. */
  final class Real implements DriverProbe {

    /** Name of the driver library, which the NVIDIA driver installs, not the CUDA toolkit. */
    static final String DRIVER_LIBRARY = "libcuda.so.1";

    // Loading a native library is a restricted operation. kiln's tests and launcher enable
    // native access, and elsewhere the JDK prints one warning.
    @SuppressWarnings("restricted")
    @Override
    public String loadDriverLibrary() {
      try {
        // The global arena keeps the library loaded, as JCuda's own link to it will anyway.
        SymbolLookup.libraryLookup(DRIVER_LIBRARY, Arena.global());
        return null;
      } catch (IllegalArgumentException e) {
        return e.getMessage();
      }
    }

    @Override
    public Path findDriverLibrary() {
      return LinkerFolders.find(
          DRIVER_LIBRARY,
          System.getenv("LD_LIBRARY_PATH"),
          Path.of("/etc/ld.so.conf"),
          LinkerFolders.DEFAULT_FOLDERS);
    }

    @Override
    public String loadBindings() {
      try {
        // Any call runs JCudaDriver's static initializer, which loads the JNI library.
        JCudaDriver.setExceptionsEnabled(false);
        return null;
      } catch (LinkageError e) {
        return e.getClass().getSimpleName() + ": " + e.getMessage();
      }
    }

    @Override
    public int initialize() {
      return JCudaDriver.cuInit(0);
    }

    @Override
    public int deviceCount() {
      int[] count = new int[1];
      int result = JCudaDriver.cuDeviceGetCount(count);
      return result == CUresult.CUDA_SUCCESS ? count[0] : 0;
    }

    @Override
    public String deviceName(int index) {
      return CudaDriver.deviceName(index);
    }

    @Override
    public int driverVersion() {
      return CudaDriver.driverVersion();
    }

    @Override
    public String errorName(int result) {
      return CudaException.errorName(result);
    }
  }
}
