package dev.kiln.core.backend.cuda;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA driver call that returned something other than {@code CUDA_SUCCESS}.
 *
 * <p>The message names the call, the arguments that matter, the error name and the driver's
 * description, for example {@code cuMemAlloc(bytes=1073741824) failed with
 * CUDA_ERROR_OUT_OF_MEMORY: out of memory}.
 */
public final class CudaException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** The {@code CUresult} code that the driver returned. */
  private final int result;

  /** The name of the driver function, such as {@code cuMemAlloc}. */
  private final String call;

  private CudaException(String message, String call, int result) {
    super(message);
    this.call = call;
    this.result = result;
  }

  /**
   * Throws unless {@code result} is {@code CUDA_SUCCESS}.
   *
   * @param result the value that the driver call returned
   * @param call the driver function's name
   * @param arguments the arguments that matter, already formatted, such as {@code "bytes=4096"}, or
   *     an empty string
   * @throws CudaException naming the call, the arguments and the error
   */
  public static void check(int result, String call, String arguments) {
    if (result != CUresult.CUDA_SUCCESS) {
      throw failure(result, call, arguments);
    }
  }

  /** Creates the exception for a failed call, without throwing it. */
  public static CudaException failure(int result, String call, String arguments) {
    String message =
        message(
            result,
            call,
            arguments,
            errorName(result),
            errorDescription(result),
            "1".equals(System.getenv("CUDA_LAUNCH_BLOCKING")));
    return new CudaException(message, call, result);
  }

  /**
   * Returns the message of a failed call, given the driver's name and description of {@code
   * result}, with advice after a kernel fault. The fault belongs to an earlier kernel, unless
   * launches block and the call is the launch itself: without {@code CUDA_LAUNCH_BLOCKING=1} even a
   * launch reports the fault of a kernel queued before it.
   *
   * @param launchesBlock whether the environment variable {@code CUDA_LAUNCH_BLOCKING} is 1
   */
  static String message(
      int result,
      String call,
      String arguments,
      String name,
      String description,
      boolean launchesBlock) {
    String message = String.format("%s(%s) failed with %s: %s", call, arguments, name, description);
    boolean ownFault = launchesBlock && call.equals("cuLaunchKernel");
    if (isKernelFault(result) && !ownFault) {
      message += ". " + KERNEL_FAULT_ADVICE;
    }
    return message;
  }

  /**
   * Advice appended to a kernel fault that a later call reported. Launches are asynchronous, so the
   * fault of a kernel appears at a later driver call, such as the next launch or the next call that
   * waits for the stream, which cannot tell which kernel it was. With {@code
   * CUDA_LAUNCH_BLOCKING=1} each launch waits for its kernel, and the launch's own error names the
   * kernel, its grid and its block.
   */
  static final String KERNEL_FAULT_ADVICE =
      "A kernel queued before this call failed, and the device cannot be used again in this"
          + " process. To find the kernel, run again with the environment variable"
          + " CUDA_LAUNCH_BLOCKING=1: each launch then waits for its kernel, and the failing"
          + " launch's error names it";

  /**
   * Returns whether {@code result} is a fault inside a running kernel. The driver reports such a
   * fault at a later call, and the context cannot be used again in this process.
   */
  static boolean isKernelFault(int result) {
    return switch (result) {
      case CUresult.CUDA_ERROR_ILLEGAL_ADDRESS,
          CUresult.CUDA_ERROR_MISALIGNED_ADDRESS,
          CUresult.CUDA_ERROR_INVALID_ADDRESS_SPACE,
          CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION,
          CUresult.CUDA_ERROR_INVALID_PC,
          CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR,
          CUresult.CUDA_ERROR_ASSERT,
          CUresult.CUDA_ERROR_LAUNCH_TIMEOUT,
          CUresult.CUDA_ERROR_LAUNCH_FAILED ->
          true;
      default -> false;
    };
  }

  /**
   * Returns the driver's name for a result code, such as {@code CUDA_ERROR_NO_DEVICE}. It calls the
   * driver's {@code cuGetErrorName} first, because a newer driver has codes that JCuda's table
   * lacks. Where JCuda's native library cannot load, it uses JCuda's table.
   */
  static String errorName(int result) {
    String[] name = new String[1];
    try {
      if (JCudaDriver.cuGetErrorName(result, name) == CUresult.CUDA_SUCCESS && name[0] != null) {
        return name[0];
      }
    } catch (LinkageError e) {
      // No driver to ask: JCuda's table below still names the code.
    }
    return CUresult.stringFor(result);
  }

  /** Returns the driver's description of a result code ({@code cuGetErrorString}). */
  static String errorDescription(int result) {
    String[] text = new String[1];
    try {
      if (JCudaDriver.cuGetErrorString(result, text) == CUresult.CUDA_SUCCESS && text[0] != null) {
        return text[0];
      }
    } catch (LinkageError e) {
      // No driver to ask, so the fallback below applies.
    }
    return "no description from the driver (code " + result + ")";
  }

  /** Returns the {@code CUresult} code. */
  public int result() {
    return result;
  }

  /** Returns the name of the driver function that failed. */
  public String call() {
    return call;
  }
}
