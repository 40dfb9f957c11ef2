package dev.kiln.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * The fatbin that nvcc built from kiln's kernels: machine code for sm_75, sm_80, sm_86, sm_89 and
 * sm_90 plus compute_90 PTX, which the CUDA driver loads as one module (cuModuleLoadData).
 */
public final class KernelImage {
  /** Path of the fatbin inside the jar. */
  static final String FATBIN_RESOURCE = "/dev/kiln/kernels/kiln.fatbin";

  /** A note the build writes in the fatbin's place when it could not build one. */
  static final String MISSING_RESOURCE = "/dev/kiln/kernels/kiln.fatbin.missing";

  private KernelImage() {}

  /**
   * Returns the fatbin's bytes, or empty when the jar has none because nvcc was missing or the
   * build ran with {@code -Dkiln.fatbin.skip=true}.
   */
  public static Optional<byte[]> fatbin() {
    return read(FATBIN_RESOURCE);
  }

  /**
   * Returns why {@link #fatbin()} is empty, in a sentence that ends with what to do, or an empty
   * string when the fatbin is present.
   */
  public static String missingReason() {
    if (KernelImage.class.getResource(FATBIN_RESOURCE) != null) {
      return "";
    }
    String reason =
        read(MISSING_RESOURCE)
            .map(bytes -> new String(bytes, StandardCharsets.UTF_8).strip())
            .orElse("the resource " + FATBIN_RESOURCE.substring(1) + " is not on the class path");
    return "kiln's kernels jar has no fatbin: "
        + reason
        + ". Rebuild the kernels module on a machine with the CUDA 13 toolkit to run on a GPU";
  }

  private static Optional<byte[]> read(String resource) {
    try (InputStream in = KernelImage.class.getResourceAsStream(resource)) {
      return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
    } catch (IOException error) {
      throw new UncheckedIOException("cannot read the resource " + resource.substring(1), error);
    }
  }
}
