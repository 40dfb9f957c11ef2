package dev.kiln.core.backend.cuda;

import java.nio.charset.StandardCharsets;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

/**
 * Process-wide setup of the CUDA driver API: {@code cuInit} and questions about the devices.
 *
 * <p>Calling any method of this class loads JCuda's JNI library, which links against {@code
 * libcuda.so.1}. On a machine without the NVIDIA driver that fails with an {@link
 * UnsatisfiedLinkError}. Call {@link CudaAvailability#check} first, which reports that case as a
 * reason instead.
 */
public final class CudaDriver {

  private static boolean initialized;

  private CudaDriver() {}

  /**
   * Initializes the driver once per process ({@code cuInit(0)}). Later calls return at once.
   *
   * @throws CudaException if {@code cuInit} fails, for example with {@code CUDA_ERROR_NO_DEVICE}
   */
  public static synchronized void initialize() {
    if (initialized) {
      return;
    }
    // kiln checks every CUresult itself, with messages that name the arguments.
    JCudaDriver.setExceptionsEnabled(false);
    CudaException.check(JCudaDriver.cuInit(0), "cuInit", "flags=0");
    initialized = true;
  }

  /** Returns the number of CUDA devices ({@code cuDeviceGetCount}), after {@link #initialize}. */
  public static int deviceCount() {
    initialize();
    int[] count = new int[1];
    CudaException.check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount", "");
    return count[0];
  }

  /**
   * Returns the handle of device {@code index} ({@code cuDeviceGet}).
   *
   * @throws CudaException with {@code CUDA_ERROR_INVALID_DEVICE} if the index is out of range
   */
  public static CUdevice device(int index) {
    initialize();
    CUdevice device = new CUdevice();
    CudaException.check(JCudaDriver.cuDeviceGet(device, index), "cuDeviceGet", "ordinal=" + index);
    return device;
  }

  /** Returns the product name of device {@code index}, such as {@code NVIDIA H200}. */
  public static String deviceName(int index) {
    byte[] name = new byte[256];
    CudaException.check(
        JCudaDriver.cuDeviceGetName(name, name.length, device(index)),
        "cuDeviceGetName",
        "ordinal=" + index);
    int length = 0;
    while (length < name.length && name[length] != 0) {
      length++;
    }
    return new String(name, 0, length, StandardCharsets.US_ASCII);
  }

  /**
   * Returns the number of streaming multiprocessors of device {@code index}, such as 132 for an
   * H200 ({@code cuDeviceGetAttribute} with {@code CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT}).
   */
  public static int multiprocessorCount(int index) {
    int[] count = new int[1];
    CudaException.check(
        JCudaDriver.cuDeviceGetAttribute(
            count, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device(index)),
        "cuDeviceGetAttribute",
        "attrib=CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, ordinal=" + index);
    return count[0];
  }

  /**
   * Returns the CUDA version that the installed driver supports, such as {@code 13000} for CUDA
   * 13.0 ({@code cuDriverGetVersion}).
   */
  public static int driverVersion() {
    int[] version = new int[1];
    CudaException.check(JCudaDriver.cuDriverGetVersion(version), "cuDriverGetVersion", "");
    return version[0];
  }
}
