package dev.kiln.benchmarks;

import dev.kiln.core.tensor.Device;

/**
 * Device selection for the benchmarks. Every benchmark takes the device as a JMH {@code @Param}
 * named {@code device} and resolves it here, so a backend is added in one place and then runs
 * through all benchmarks with {@code -p device=cuda}.
 */
public final class BenchDevice {
  private BenchDevice() {}

  /**
   * Parses a device name and checks that the benchmarks can run on it.
   *
   * @throws IllegalArgumentException for an invalid name, or for a device that kiln's modules and
   *     kernels cannot run on yet
   */
  public static Device resolve(String name) {
    Device device = Device.parse(name);
    // TODO: accept cuda and emulated once Module can move its parameters to them; until then only
    // the tensors could move, and a layer would mix devices.
    if (device.kind() != Device.Kind.CPU) {
      throw new IllegalArgumentException(
          "device "
              + device
              + " is not supported by the benchmarks yet: kiln runs layers on cpu only, so use"
              + " -p device=cpu");
    }
    return device;
  }
}
