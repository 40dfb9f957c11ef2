package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;

/**
 * The driver errors' messages. The tests pass the error's name and description themselves and never
 * call the driver, because a failed load of JCuda's native library cannot be retried. Once it
 * failed, every later use of JCudaDriver in this JVM reports only that its class cannot be
 * initialized, and CudaAvailabilityTest checks the first failure's message.
 */
class CudaExceptionTest {

  @Test
  void faultAtSynchronizeAdvisesBlockingLaunches() {
    String message = illegalAddressAt("cuStreamSynchronize", "device=cuda:0", false);

    assertTrue(
        message.startsWith(
            "cuStreamSynchronize(device=cuda:0) failed with CUDA_ERROR_ILLEGAL_ADDRESS: an illegal"
                + " memory access was encountered. A kernel queued before this call failed"),
        message);
    assertTrue(message.contains("CUDA_LAUNCH_BLOCKING=1"), message);
  }

  @Test
  void faultAtAsyncLaunchGetsAdvice() {
    String message = illegalAddressAt("cuLaunchKernel", "kernel=kiln_conv2d_forward", false);

    assertTrue(message.contains("A kernel queued before this call failed"), message);
  }

  @Test
  void faultAtABlockingLaunchIsItsOwn() {
    String message = illegalAddressAt("cuLaunchKernel", "kernel=kiln_conv2d_forward", true);

    assertTrue(message.contains("kernel=kiln_conv2d_forward"), message);
    assertFalse(message.contains("CUDA_LAUNCH_BLOCKING"), message);
  }

  @Test
  void otherErrorsGetNoKernelAdvice() {
    String message =
        CudaException.message(
            CUresult.CUDA_ERROR_INVALID_VALUE,
            "cuMemcpyHtoD",
            "bytes=4",
            "CUDA_ERROR_INVALID_VALUE",
            "invalid argument",
            false);

    assertEquals(
        "cuMemcpyHtoD(bytes=4) failed with CUDA_ERROR_INVALID_VALUE: invalid argument", message);
    assertTrue(CudaException.isKernelFault(CUresult.CUDA_ERROR_LAUNCH_FAILED));
    assertFalse(CudaException.isKernelFault(CUresult.CUDA_ERROR_OUT_OF_MEMORY));
  }

  /** Returns the message of a CUDA_ERROR_ILLEGAL_ADDRESS that {@code call} reported. */
  private static String illegalAddressAt(String call, String arguments, boolean launchesBlock) {
    return CudaException.message(
        CUresult.CUDA_ERROR_ILLEGAL_ADDRESS,
        call,
        arguments,
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "an illegal memory access was encountered",
        launchesBlock);
  }
}
