package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.driver.CUresult;
import org.junit.jupiter.api.Test;

/**
 * The driver errors' messages. Without a driver, the error names come from JCuda's table, so these
 * tests need no GPU.
 */
class CudaExceptionTest {

  @Test
  void faultAtSynchronizeAdvisesBlockingLaunches() {
    CudaException e =
        CudaException.failure(
            CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, "cuStreamSynchronize", "device=cuda:0");

    assertTrue(
        e.getMessage().startsWith("cuStreamSynchronize(device=cuda:0) failed with"),
        e.getMessage());
    assertTrue(e.getMessage().contains("CUDA_LAUNCH_BLOCKING=1"), e.getMessage());
    assertEquals(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, e.result());
  }

  @Test
  void faultAtLaunchGetsNoAdvice() {
    CudaException e =
        CudaException.failure(
            CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, "cuLaunchKernel", "kernel=kiln_conv2d_forward");

    assertTrue(e.getMessage().contains("kernel=kiln_conv2d_forward"), e.getMessage());
    assertFalse(e.getMessage().contains("CUDA_LAUNCH_BLOCKING"), e.getMessage());
  }

  @Test
  void otherErrorsGetNoKernelAdvice() {
    CudaException e =
        CudaException.failure(CUresult.CUDA_ERROR_INVALID_VALUE, "cuMemcpyHtoD", "bytes=4");

    assertFalse(e.getMessage().contains("CUDA_LAUNCH_BLOCKING"), e.getMessage());
    assertTrue(CudaException.isKernelFault(CUresult.CUDA_ERROR_LAUNCH_FAILED));
    assertFalse(CudaException.isKernelFault(CUresult.CUDA_ERROR_OUT_OF_MEMORY));
  }
}
