package dev.kiln.benchmarks;

import dev.kiln.core.tensor.Device;
import java.io.PrintStream;

/** Argument parsing and device opening shared by the device timers' {@code main} methods. */
final class TimerArguments {
  private TimerArguments() {}

  /**
   * Parses a whole number of at least {@code least}.
   *
   * @throws IllegalArgumentException naming the argument, the text and the accepted range
   */
  static int wholeNumber(String name, String text, int least) {
    int value;
    try {
      value = Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "invalid " + name + " '" + text + "': give a whole number of at least " + least, e);
    }
    if (value < least) {
      throw new IllegalArgumentException(
          "invalid " + name + " '" + text + "': give a whole number of at least " + least);
    }
    return value;
  }

  /**
   * Opens the device named {@code name} for a timer, or prints why it cannot and returns null: an
   * invalid name, an unusable device, or the CPU, which has no device kernels to time.
   *
   * @param timer the timer's class name, which starts each message
   * @param cpuAdvice what to give instead of {@code cpu}
   */
  static Device openDevice(String timer, String name, String cpuAdvice, PrintStream err) {
    Device device;
    try {
      device = BenchDevice.resolve(name);
    } catch (IllegalArgumentException | IllegalStateException e) {
      err.println(timer + ": " + e.getMessage());
      return null;
    }
    if (device.isCpu()) {
      err.println(timer + ": " + cpuAdvice);
      return null;
    }
    return device;
  }
}
