package dev.kiln.core.backend.cuda.libraries;

/**
 * One entry of cuDNN's algorithm list for a convolution ({@code cudnnConvolutionFwdAlgoPerf_t} and
 * its backward twins).
 *
 * <p>cuDNN implements each convolution with several algorithms: implicit GEMM, explicit GEMM over
 * an unfolded input, FFT, Winograd and others. They differ in speed by up to tens of times
 * depending on the shape, and many need a workspace, a scratch buffer in device memory whose size
 * depends on the algorithm and the shape. cuDNN reports, for each algorithm, whether it supports
 * the shape, its time, how much workspace it needs and the math type it would run with.
 *
 * @param algorithm the algorithm's enum value, such as 1 for {@code
 *     CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM}
 * @param status 0 where the algorithm supports this shape, else a cuDNN status code
 * @param timeMillis the time in milliseconds. It is a measurement only in the lists of {@code
 *     cudnnFindConvolution*AlgorithmEx}, which run each algorithm. kiln does not rely on what the
 *     {@code _v7} heuristics write here and never ranks their lists by it
 * @param workspaceBytes the workspace the algorithm needs, in bytes
 * @param mathType the {@code cudnnMathType_t} that cuDNN pairs with this algorithm, such as 3 for
 *     {@code CUDNN_FMA_MATH}
 */
public record AlgorithmPerf(
    int algorithm, int status, float timeMillis, long workspaceBytes, int mathType) {}
