package dev.kiln.benchmarks;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.model.ModelPresets;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;

/**
 * Prints whether kiln can run on a CUDA device, and what the JVM and class path bring for it, as
 * {@code key=value} lines that {@code benchmarks/gpu-check/gpu-check.sh} copies into its report.
 *
 * <p>Usage: {@code GpuReport [device]}, with the device {@code cuda:N} and default {@code cuda:0}.
 * The keys are {@code java.version}, {@code java.home}, {@code os}, {@code processors}, {@code
 * device}, {@code usable} ({@code true} or {@code false}), {@code message} (the device's name and
 * driver, or the reason it is not usable), {@code fatbin} and {@code emulation.library} (the jar
 * resources and their sizes, or {@code missing}), and {@code presets} (the keypoint presets,
 * separated by spaces). A device that is not usable is a result, not an error, so the exit status
 * is 0 either way. An invalid argument exits with 2.
 */
public final class GpuReport {

  /** Class-path resource of the CPU emulation library, which the kernels module builds. */
  static final String EMULATION_RESOURCE = "dev/kiln/kernels/linux-x86_64/libkiln_emu.so";

  private GpuReport() {}

  /** Runs the CUDA check and prints the report lines. */
  public static void main(String[] args) {
    Device device;
    try {
      device = parseCudaDevice(args.length > 0 ? args[0] : "cuda:0");
    } catch (IllegalArgumentException e) {
      System.err.println("GpuReport: " + e.getMessage());
      System.exit(2);
      return;
    }

    print("java.version", Runtime.version().toString());
    print("java.home", System.getProperty("java.home"));
    print(
        "os",
        System.getProperty("os.name")
            + " "
            + System.getProperty("os.arch")
            + " "
            + System.getProperty("os.version"));
    print("processors", Integer.toString(Runtime.getRuntime().availableProcessors()));

    CudaAvailability availability = CudaAvailability.check(device.index());
    print("device", availability.device().toString());
    print("usable", Boolean.toString(availability.usable()));
    print("message", availability.message());

    print("fatbin", describeResource(CudaAvailability.FATBIN_RESOURCE));
    print("emulation.library", describeResource(EMULATION_RESOURCE));
    print("presets", String.join(" ", ModelPresets.names()));
  }

  /**
   * Parses {@code name} as a CUDA device.
   *
   * @throws IllegalArgumentException when the name is invalid or names another kind of device
   */
  static Device parseCudaDevice(String name) {
    Device device = Device.parse(name);
    if (device.kind() != Device.Kind.CUDA) {
      throw new IllegalArgumentException(
          "GpuReport checks CUDA devices only, got '" + name + "': use cuda or cuda:N");
    }
    return device;
  }

  /**
   * Describes a class-path resource as {@code "N bytes (name)"}, or as {@code "missing (...)"}
   * where the class path has no such resource.
   */
  static String describeResource(String resource) {
    ClassLoader loader = GpuReport.class.getClassLoader();
    try (InputStream in = loader.getResourceAsStream(resource)) {
      if (in == null) {
        return "missing (class-path resource " + resource + ")";
      }
      long size = in.transferTo(OutputStream.nullOutputStream());
      return size + " bytes (" + resource + ")";
    } catch (IOException e) {
      throw new UncheckedIOException("failed to read class-path resource " + resource, e);
    }
  }

  private static void print(String key, String value) {
    // The script reads one line per key, so line breaks inside a value become spaces.
    System.out.println(key + "=" + value.replace('\n', ' '));
  }
}
