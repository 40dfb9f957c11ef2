package dev.kiln.kernels;

/**
 * A kernel launch that failed: an unknown kernel, arguments that do not match its parameters, an
 * invalid grid or block, or a misuse of a CUDA builtin that the emulator detected while the kernel
 * ran. The message names the kernel and, for failures inside it, the block and thread.
 */
public final class KernelLaunchException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Creates an exception with the launcher's message. */
  public KernelLaunchException(String message) {
    super(message);
  }
}
