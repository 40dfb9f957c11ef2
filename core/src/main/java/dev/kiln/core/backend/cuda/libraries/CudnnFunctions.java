package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.invoke.MethodHandle;

/**
 * The cuDNN C functions that kiln calls, bound by name from one library file.
 *
 * <p>All of them belong to cuDNN's legacy API, which cuDNN 9 still exports next to its graph API.
 * Every function returns a {@code cudnnStatus_t} except {@code cudnnGetVersion} and {@code
 * cudnnGetCudartVersion} ({@code size_t}) and {@code cudnnGetErrorString} ({@code const char*}). In
 * the C signatures, handles and descriptors are pointers, enums are {@code int}, sizes are {@code
 * size_t} (a Java {@code long} on 64-bit Linux), and alpha and beta are pointers to host floats.
 */
final class CudnnFunctions {

  private static final MemoryLayout P = ADDRESS;
  private static final MemoryLayout I = JAVA_INT;

  final MethodHandle getVersion;
  final MethodHandle getCudartVersion;
  final MethodHandle getErrorString;
  final MethodHandle create;
  final MethodHandle destroy;
  final MethodHandle setStream;

  final MethodHandle createTensor;
  final MethodHandle setTensorNd;
  final MethodHandle destroyTensor;
  final MethodHandle createFilter;
  final MethodHandle setFilter4d;
  final MethodHandle destroyFilter;
  final MethodHandle createConvolution;
  final MethodHandle setConvolution2d;
  final MethodHandle setConvolutionMathType;
  final MethodHandle getConvolution2dForwardOutputDim;
  final MethodHandle destroyConvolution;
  final MethodHandle createPooling;
  final MethodHandle setPooling2d;
  final MethodHandle destroyPooling;
  final MethodHandle createActivation;
  final MethodHandle setActivation;
  final MethodHandle destroyActivation;
  final MethodHandle createDropout;
  final MethodHandle dropoutGetStatesSize;
  final MethodHandle dropoutGetReserveSpaceSize;
  final MethodHandle setDropout;
  final MethodHandle destroyDropout;

  final MethodHandle forwardAlgorithms;
  final MethodHandle forwardWorkspaceSize;
  final MethodHandle convolutionForward;
  final MethodHandle backwardDataAlgorithms;
  final MethodHandle backwardDataWorkspaceSize;
  final MethodHandle convolutionBackwardData;
  final MethodHandle backwardFilterAlgorithms;
  final MethodHandle backwardFilterWorkspaceSize;
  final MethodHandle convolutionBackwardFilter;
  final MethodHandle convolutionBackwardBias;

  final MethodHandle poolingForward;
  final MethodHandle poolingBackward;
  final MethodHandle deriveBatchNormTensor;
  final MethodHandle batchNormForwardTraining;
  final MethodHandle batchNormForwardInference;
  final MethodHandle batchNormBackward;
  final MethodHandle dropoutForward;
  final MethodHandle dropoutBackward;
  final MethodHandle activationForward;
  final MethodHandle activationBackward;

  /** Binds every function, then throws naming all missing ones, if any. */
  CudnnFunctions(NativeLibrary library) {
    getVersion = library.function("cudnnGetVersion", FunctionDescriptor.of(JAVA_LONG));
    // The CUDA runtime version that cuDNN was built for, as 1000 * major + 10 * minor.
    getCudartVersion = library.function("cudnnGetCudartVersion", FunctionDescriptor.of(JAVA_LONG));
    getErrorString = library.function("cudnnGetErrorString", FunctionDescriptor.of(P, I));
    create = bind(library, "cudnnCreate", P);
    destroy = bind(library, "cudnnDestroy", P);
    setStream = bind(library, "cudnnSetStream", P, P);

    createTensor = bind(library, "cudnnCreateTensorDescriptor", P);
    // (desc, dataType, nbDims, int dims[], int strides[])
    setTensorNd = bind(library, "cudnnSetTensorNdDescriptor", P, I, I, P, P);
    destroyTensor = bind(library, "cudnnDestroyTensorDescriptor", P);
    createFilter = bind(library, "cudnnCreateFilterDescriptor", P);
    // (desc, dataType, format, k, c, h, w)
    setFilter4d = bind(library, "cudnnSetFilter4dDescriptor", P, I, I, I, I, I, I);
    destroyFilter = bind(library, "cudnnDestroyFilterDescriptor", P);
    createConvolution = bind(library, "cudnnCreateConvolutionDescriptor", P);
    // (desc, padH, padW, strideH, strideW, dilationH, dilationW, mode, computeType)
    setConvolution2d = bind(library, "cudnnSetConvolution2dDescriptor", P, I, I, I, I, I, I, I, I);
    setConvolutionMathType = bind(library, "cudnnSetConvolutionMathType", P, I);
    // (conv, xDesc, wDesc, int* n, int* c, int* h, int* w)
    getConvolution2dForwardOutputDim =
        bind(library, "cudnnGetConvolution2dForwardOutputDim", P, P, P, P, P, P, P);
    destroyConvolution = bind(library, "cudnnDestroyConvolutionDescriptor", P);
    createPooling = bind(library, "cudnnCreatePoolingDescriptor", P);
    // (desc, mode, nanPropagation, windowH, windowW, padV, padH, strideV, strideH)
    setPooling2d = bind(library, "cudnnSetPooling2dDescriptor", P, I, I, I, I, I, I, I, I);
    destroyPooling = bind(library, "cudnnDestroyPoolingDescriptor", P);
    createActivation = bind(library, "cudnnCreateActivationDescriptor", P);
    // (desc, mode, nanPropagation, double coef)
    setActivation = bind(library, "cudnnSetActivationDescriptor", P, I, I, JAVA_DOUBLE);
    destroyActivation = bind(library, "cudnnDestroyActivationDescriptor", P);
    createDropout = bind(library, "cudnnCreateDropoutDescriptor", P);
    dropoutGetStatesSize = bind(library, "cudnnDropoutGetStatesSize", P, P);
    dropoutGetReserveSpaceSize = bind(library, "cudnnDropoutGetReserveSpaceSize", P, P);
    // (desc, handle, float dropout, void* states, size_t stateBytes, unsigned long long seed)
    setDropout =
        bind(library, "cudnnSetDropoutDescriptor", P, P, JAVA_FLOAT, P, JAVA_LONG, JAVA_LONG);
    destroyDropout = bind(library, "cudnnDestroyDropoutDescriptor", P);

    // (handle, 4 descriptors, int requested, int* returned, perf* results)
    forwardAlgorithms =
        bind(library, "cudnnGetConvolutionForwardAlgorithm_v7", P, P, P, P, P, I, P, P);
    // (handle, 4 descriptors, algo, size_t* bytes)
    forwardWorkspaceSize =
        bind(library, "cudnnGetConvolutionForwardWorkspaceSize", P, P, P, P, P, I, P);
    // (handle, alpha, xDesc, x, wDesc, w, conv, algo, workspace, bytes, beta, yDesc, y)
    convolutionForward =
        bind(library, "cudnnConvolutionForward", P, P, P, P, P, P, P, I, P, JAVA_LONG, P, P, P);
    backwardDataAlgorithms =
        bind(library, "cudnnGetConvolutionBackwardDataAlgorithm_v7", P, P, P, P, P, I, P, P);
    backwardDataWorkspaceSize =
        bind(library, "cudnnGetConvolutionBackwardDataWorkspaceSize", P, P, P, P, P, I, P);
    // (handle, alpha, wDesc, w, dyDesc, dy, conv, algo, workspace, bytes, beta, dxDesc, dx)
    convolutionBackwardData =
        bind(
            library, "cudnnConvolutionBackwardData", P, P, P, P, P, P, P, I, P, JAVA_LONG, P, P, P);
    backwardFilterAlgorithms =
        bind(library, "cudnnGetConvolutionBackwardFilterAlgorithm_v7", P, P, P, P, P, I, P, P);
    backwardFilterWorkspaceSize =
        bind(library, "cudnnGetConvolutionBackwardFilterWorkspaceSize", P, P, P, P, P, I, P);
    // (handle, alpha, xDesc, x, dyDesc, dy, conv, algo, workspace, bytes, beta, dwDesc, dw)
    convolutionBackwardFilter =
        bind(
            library,
            "cudnnConvolutionBackwardFilter",
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            I,
            P,
            JAVA_LONG,
            P,
            P,
            P);
    // (handle, alpha, dyDesc, dy, beta, dbDesc, db)
    convolutionBackwardBias = bind(library, "cudnnConvolutionBackwardBias", P, P, P, P, P, P, P);

    // (handle, pool, alpha, xDesc, x, beta, yDesc, y)
    poolingForward = bind(library, "cudnnPoolingForward", P, P, P, P, P, P, P, P);
    // (handle, pool, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx)
    poolingBackward = bind(library, "cudnnPoolingBackward", P, P, P, P, P, P, P, P, P, P, P, P);
    deriveBatchNormTensor = bind(library, "cudnnDeriveBNTensorDescriptor", P, P, I);
    // (handle, mode, alpha, beta, xDesc, x, yDesc, y, bnDesc, scale, bias, double factor,
    //  runningMean, runningVariance, double epsilon, saveMean, saveInvVariance)
    batchNormForwardTraining =
        bind(
            library,
            "cudnnBatchNormalizationForwardTraining",
            P,
            I,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            JAVA_DOUBLE,
            P,
            P,
            JAVA_DOUBLE,
            P,
            P);
    // (handle, mode, alpha, beta, xDesc, x, yDesc, y, bnDesc, scale, bias, mean, variance,
    //  double epsilon)
    batchNormForwardInference =
        bind(
            library,
            "cudnnBatchNormalizationForwardInference",
            P,
            I,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            JAVA_DOUBLE);
    // (handle, mode, alphaData, betaData, alphaParam, betaParam, xDesc, x, dyDesc, dy, dxDesc,
    //  dx, bnDesc, scale, dScale, dBias, double epsilon, saveMean, saveInvVariance)
    batchNormBackward =
        bind(
            library,
            "cudnnBatchNormalizationBackward",
            P,
            I,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            P,
            JAVA_DOUBLE,
            P,
            P);
    // (handle, dropout, xDesc, x, yDesc, y, reserve, size_t reserveBytes)
    dropoutForward = bind(library, "cudnnDropoutForward", P, P, P, P, P, P, P, JAVA_LONG);
    dropoutBackward = bind(library, "cudnnDropoutBackward", P, P, P, P, P, P, P, JAVA_LONG);
    // (handle, activation, alpha, xDesc, x, beta, yDesc, y)
    activationForward = bind(library, "cudnnActivationForward", P, P, P, P, P, P, P, P);
    // (handle, activation, alpha, yDesc, y, dyDesc, dy, xDesc, x, beta, dxDesc, dx)
    activationBackward =
        bind(library, "cudnnActivationBackward", P, P, P, P, P, P, P, P, P, P, P, P);

    library.requireAll();
  }

  /** Binds a function that returns {@code cudnnStatus_t} and takes {@code parameters}. */
  private static MethodHandle bind(NativeLibrary library, String name, MemoryLayout... parameters) {
    return library.function(name, FunctionDescriptor.of(JAVA_INT, parameters));
  }
}
