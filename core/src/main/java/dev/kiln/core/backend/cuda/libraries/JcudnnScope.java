package dev.kiln.core.backend.cuda.libraries;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import java.util.ArrayDeque;
import java.util.Deque;
import jcuda.Pointer;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnActivationDescriptor;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnPoolingDescriptor;
import jcuda.jcudnn.cudnnTensorDescriptor;

/**
 * The JCudnn descriptors of one call, destroyed together when the scope closes; the JCuda twin of
 * {@link CudnnDescriptors}, with the same constants and checks.
 */
final class JcudnnScope implements AutoCloseable {

  private final Deque<Runnable> destroyers = new ArrayDeque<>();

  /** Returns a host float for alpha or beta. */
  static Pointer scalar(float value) {
    return Pointer.to(new float[] {value});
  }

  /** Returns a JCuda pointer to a raw device address. */
  static Pointer pointer(long address) {
    return JcublasBlas.devicePointer(address);
  }

  /**
   * Throws unless {@code status} is {@code CUDNN_STATUS_SUCCESS}, with the loaded library's text.
   */
  static void check(int status, String call, String arguments) {
    if (status != 0) {
      throw new VendorException(
          call, status, StatusNames.cudnn(status, JCudnn::cudnnGetErrorString), arguments);
    }
  }

  cudnnTensorDescriptor tensor(Nchw shape) {
    cudnnTensorDescriptor descriptor = new cudnnTensorDescriptor();
    check(JCudnn.cudnnCreateTensorDescriptor(descriptor), "cudnnCreateTensorDescriptor", "");
    destroyers.push(() -> JCudnn.cudnnDestroyTensorDescriptor(descriptor));
    check(
        JCudnn.cudnnSetTensorNdDescriptor(
            descriptor, CudnnDescriptors.DATA_FLOAT, 4, shape.dims(), shape.strides()),
        "cudnnSetTensorNdDescriptor",
        "dims=" + shape + ", packed NCHW strides");
    return descriptor;
  }

  cudnnTensorDescriptor emptyTensor() {
    cudnnTensorDescriptor descriptor = new cudnnTensorDescriptor();
    check(JCudnn.cudnnCreateTensorDescriptor(descriptor), "cudnnCreateTensorDescriptor", "");
    destroyers.push(() -> JCudnn.cudnnDestroyTensorDescriptor(descriptor));
    return descriptor;
  }

  cudnnFilterDescriptor filter(Nchw shape) {
    cudnnFilterDescriptor descriptor = new cudnnFilterDescriptor();
    check(JCudnn.cudnnCreateFilterDescriptor(descriptor), "cudnnCreateFilterDescriptor", "");
    destroyers.push(() -> JCudnn.cudnnDestroyFilterDescriptor(descriptor));
    check(
        JCudnn.cudnnSetFilter4dDescriptor(
            descriptor,
            CudnnDescriptors.DATA_FLOAT,
            CudnnDescriptors.TENSOR_NCHW,
            shape.n(),
            shape.c(),
            shape.h(),
            shape.w()),
        "cudnnSetFilter4dDescriptor",
        "KCRS=" + shape);
    return descriptor;
  }

  cudnnConvolutionDescriptor convolution(Conv2dGeometry g) {
    cudnnConvolutionDescriptor descriptor = new cudnnConvolutionDescriptor();
    check(
        JCudnn.cudnnCreateConvolutionDescriptor(descriptor),
        "cudnnCreateConvolutionDescriptor",
        "");
    destroyers.push(() -> JCudnn.cudnnDestroyConvolutionDescriptor(descriptor));
    check(
        JCudnn.cudnnSetConvolution2dDescriptor(
            descriptor,
            g.padHeight(),
            g.padWidth(),
            g.strideHeight(),
            g.strideWidth(),
            g.dilationHeight(),
            g.dilationWidth(),
            CudnnDescriptors.CROSS_CORRELATION,
            CudnnDescriptors.DATA_FLOAT),
        "cudnnSetConvolution2dDescriptor",
        g.toString());
    check(
        JCudnn.cudnnSetConvolutionMathType(descriptor, CudnnDescriptors.FMA_MATH),
        "cudnnSetConvolutionMathType",
        "mathType=CUDNN_FMA_MATH");
    return descriptor;
  }

  cudnnPoolingDescriptor pooling(VendorDnn.PoolingMode mode, Pool2dGeometry g) {
    cudnnPoolingDescriptor descriptor = new cudnnPoolingDescriptor();
    check(JCudnn.cudnnCreatePoolingDescriptor(descriptor), "cudnnCreatePoolingDescriptor", "");
    destroyers.push(() -> JCudnn.cudnnDestroyPoolingDescriptor(descriptor));
    check(
        JCudnn.cudnnSetPooling2dDescriptor(
            descriptor,
            mode.cudnnValue,
            CudnnDescriptors.PROPAGATE_NAN,
            g.kernelHeight(),
            g.kernelWidth(),
            g.padHeight(),
            g.padWidth(),
            g.strideHeight(),
            g.strideWidth()),
        "cudnnSetPooling2dDescriptor",
        mode + ", " + g);
    return descriptor;
  }

  cudnnActivationDescriptor activation(VendorDnn.ActivationMode mode) {
    cudnnActivationDescriptor descriptor = new cudnnActivationDescriptor();
    check(
        JCudnn.cudnnCreateActivationDescriptor(descriptor), "cudnnCreateActivationDescriptor", "");
    destroyers.push(() -> JCudnn.cudnnDestroyActivationDescriptor(descriptor));
    check(
        JCudnn.cudnnSetActivationDescriptor(
            descriptor, mode.cudnnValue, CudnnDescriptors.PROPAGATE_NAN, 0.0),
        "cudnnSetActivationDescriptor",
        mode.toString());
    return descriptor;
  }

  /** Destroys the descriptors, newest first, without checking, as {@link CudnnDescriptors}. */
  @Override
  public void close() {
    while (!destroyers.isEmpty()) {
      destroyers.pop().run();
    }
  }
}
