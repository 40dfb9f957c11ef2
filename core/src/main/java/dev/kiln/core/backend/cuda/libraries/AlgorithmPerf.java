package dev.kiln.core.backend.cuda.libraries;

/**
 * One entry of cuDNN's algorithm list for a convolution ({@code cudnnConvolutionFwdAlgoPerf_t} and
 * its backward twins).
 *
 * <p>cuDNN implements each convolution with several algorithms: implicit GEMM, explicit GEMM over
 * an unfolded input, FFT, Winograd and others. They differ in speed by up to tens of times
 * depending on the shape, and many need a workspace, a scratch buffer in device memory whose size
 * depends on the algorithm and the shape. cuDNN reports, for each algorithm, whether it supports
 * the shape, how long it took (when it was measured) and how much workspace it needs.
 *
 * @param algorithm the algorithm's enum value, such as 1 for {@code
 *     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM}
 * @param status 0 where the algorithm supports this shape, else a cuDNN status code
 * @param timeMillis the measured time in milliseconds, or a negative value where cuDNN only ranked
 *     the algorithm by heuristics without running it
 * @param workspaceBytes the workspace the algorithm needs, in bytes
 */
public record AlgorithmPerf(int algorithm, int status, float timeMillis, long workspaceBytes) {

  /** Returns whether cuDNN measured this entry's time rather than ranking it by heuristics. */
  public boolean measured() {
    return timeMillis >= 0;
  }
}
