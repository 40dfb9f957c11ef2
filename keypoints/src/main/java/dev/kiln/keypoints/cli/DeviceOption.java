package dev.kiln.keypoints.cli;

import dev.kiln.core.backend.cuda.AutoDevice;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.tensor.Device;
import java.io.PrintWriter;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The {@code --device} option that {@code train}, {@code evaluate} and {@code predict} share: its
 * help text, and the step that turns a name into an open device, or into a message with the reason
 * the device cannot be used.
 */
final class DeviceOption {

  /** Help text of the accepted names, without the default, which each command adds. */
  static final String NAMES =
      "cpu, cuda (the same as cuda:0), cuda:N, auto (cuda:0 where it is usable, else the CPU, and"
          + " prints why) or emulated (kiln's CUDA kernels compiled for the CPU: a test device, far"
          + " slower than cpu).";

  /** Exit status of a command whose {@code --device} is invalid or cannot be used. */
  static final int UNUSABLE = 2;

  private DeviceOption() {}

  /**
   * Resolves {@code name} and opens the device, so that a command can stop before it reads any
   * data. {@code auto} falls back to the CPU and prints why. Prints the libraries that serve a
   * device's layers on the command's output.
   *
   * @param spec the command, whose name appears in messages ("cannot evaluate on cuda:0")
   * @return the device, or null after printing to the command's error stream why {@code name} is
   *     invalid or cannot be used
   */
  static Device resolve(CommandSpec spec, String name) {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    String command = spec.name();
    // Device.parse ignores case and surrounding spaces, and so does this test.
    if (name.trim().equalsIgnoreCase("auto")) {
      return resolveAuto(out);
    }

    Device parsed;
    try {
      parsed = Device.parse(name);
    } catch (IllegalArgumentException e) {
      err.println("kiln " + command + ": " + e.getMessage() + ". --device also accepts auto.");
      return null;
    }
    if (parsed.isCpu()) {
      return parsed;
    }
    String failure = DeviceKernels.openFailure(parsed).orElse(null);
    if (failure != null) {
      err.println(
          "kiln "
              + command
              + ": cannot "
              + command
              + " on "
              + parsed
              + ": "
              + failure
              + ". To "
              + command
              + " on the CPU instead, use --device cpu.");
      return null;
    }
    if (parsed.kind() == Device.Kind.EMULATED) {
      out.println(
          "device emulated: kiln's CUDA kernels compiled for the CPU, launched one at a time. It"
              + " exists to test the device path and runs far slower than --device cpu.");
    }
    printLibraries(out, parsed);
    return parsed;
  }

  /** Returns {@code cuda:0} where it is usable and opens, else the CPU, printing why. */
  private static Device resolveAuto(PrintWriter out) {
    AutoDevice.Choice choice = AutoDevice.resolve();
    if (choice.device().isCpu()) {
      out.println("device auto: using the CPU, because " + choice.reason());
      return Device.CPU;
    }
    String failure = DeviceKernels.openFailure(choice.device()).orElse(null);
    if (failure != null) {
      out.println("device auto: using the CPU, because " + failure);
      return Device.CPU;
    }
    out.println("device auto: using " + choice.device() + ", which is usable: " + choice.reason());
    printLibraries(out, choice.device());
    return choice.device();
  }

  /** Prints which library serves which layers on {@code target}: cuBLAS, cuDNN or kiln's own. */
  private static void printLibraries(PrintWriter out, Device target) {
    out.println("device " + target + ": " + DeviceKernels.of(target).libraries());
  }
}
