package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.util.Optional;

/**
 * Checks the pointer arguments of a kernel launch and converts them to what one runtime passes to
 * its kernels, so that {@link EmulatedRuntime} and {@link CudaRuntime} apply the same rule.
 *
 * <p>Most kernel parameters are dereferenced without a test. A null there makes the emulated
 * kernel, which runs inside the JVM, crash the whole process with a segmentation fault, and makes a
 * GPU kernel fault with an illegal address that is reported only at the next synchronization. A few
 * parameters (a bias, gamma, beta, a dropout mask, a momentum buffer and the like) are tested for
 * null by the kernel and read as "absent". Launchers pass those as an {@link Optional} of a {@link
 * DeviceBuffer}, so a bare {@code null} is always a bug and is rejected before the launch.
 */
final class LaunchArguments {

  /** Converts a buffer to the runtime's pointer argument, after any checks the runtime makes. */
  @FunctionalInterface
  interface PointerConverter {

    /**
     * Returns the pointer argument for {@code buffer}, argument {@code index} of {@code kernel}.
     */
    Object pointer(DeviceBuffer buffer, String kernel, int index);
  }

  private LaunchArguments() {}

  /**
   * Returns {@code args} with each {@link DeviceBuffer} converted by {@code converter}, each empty
   * {@link Optional} replaced by {@code nullPointer} and each non-empty one by its converted
   * buffer. Scalars pass unchanged.
   *
   * @throws IllegalArgumentException naming the kernel and the argument's position if an argument
   *     is {@code null} or an {@link Optional} contains something other than a {@link DeviceBuffer}
   */
  static Object[] convert(
      String kernel, Object[] args, PointerConverter converter, Object nullPointer) {
    Object[] converted = new Object[args.length];
    for (int i = 0; i < args.length; i++) {
      converted[i] =
          switch (args[i]) {
            case null ->
                throw new IllegalArgumentException(
                    "argument "
                        + i
                        + " of kernel "
                        + kernel
                        + " is null, but the kernel reads that pointer without a null check: pass"
                        + " a buffer, or pass Optional.ofNullable(buffer) where the kernel reads a"
                        + " null pointer as an absent input");
            case DeviceBuffer buffer -> converter.pointer(buffer, kernel, i);
            case Optional<?> optional when optional.isEmpty() -> nullPointer;
            case Optional<?> optional ->
                converter.pointer(requireBuffer(kernel, i, optional.get()), kernel, i);
            default -> args[i];
          };
    }
    return converted;
  }

  private static DeviceBuffer requireBuffer(String kernel, int index, Object value) {
    if (value instanceof DeviceBuffer buffer) {
      return buffer;
    }
    throw new IllegalArgumentException(
        String.format(
            "argument %d of kernel %s is an Optional of %s: an Optional argument must hold a"
                + " DeviceBuffer or be empty",
            index, kernel, value.getClass().getName()));
  }
}
