package dev.kiln.benchmarks;

import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.tensor.Device;

/**
 * Device selection for the benchmarks. Every benchmark takes the device as a JMH {@code @Param}
 * named {@code device} and resolves it here, so a backend is added in one place and then runs
 * through all benchmarks with {@code -p device=cuda}.
 *
 * <p>On a GPU a call returns once its kernels are queued, so a benchmark that stopped the clock
 * there would time the queueing and not the work. Each benchmark therefore ends its call with
 * {@link #synchronize(Device)}, which waits for the device, as a PyTorch benchmark calls {@code
 * torch.cuda.synchronize()}. The emulated device runs each kernel to completion anyway. It is
 * accepted so that the benchmark code can be tried without a GPU, but its times mean nothing.
 */
public final class BenchDevice {
  private BenchDevice() {}

  /**
   * Parses a device name and opens the device, so that an unusable one fails before any
   * measurement, with the reason.
   *
   * @throws IllegalArgumentException for an invalid name
   * @throws IllegalStateException for a device that cannot be used here, with the reason
   */
  public static Device resolve(String name) {
    Device device = Device.parse(name);
    if (!device.isCpu()) {
      DeviceKernels.of(device);
    }
    return device;
  }

  /** Waits until the work issued to {@code device} has finished; returns at once on the CPU. */
  public static void synchronize(Device device) {
    if (!device.isCpu()) {
      DeviceKernels.of(device).runtime().synchronize();
    }
  }
}
