package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The cuDNN descriptors of one call, destroyed together when the scope closes.
 *
 * <p>A descriptor is created ({@code cudnnCreate*Descriptor}), filled ({@code cudnnSet*}) and
 * destroyed ({@code cudnnDestroy*Descriptor}). Filling is where cuDNN validates a shape, so a bad
 * shape fails there, with the descriptor's name in the message. The scope also owns the host memory
 * of alpha and beta, the two scalars of cuDNN's blend {@code y = alpha * result + beta * y}.
 */
final class CudnnDescriptors implements AutoCloseable {

  /** {@code CUDNN_DATA_FLOAT}. */
  static final int DATA_FLOAT = 0;

  /** {@code CUDNN_TENSOR_NCHW}. */
  static final int TENSOR_NCHW = 0;

  /** {@code CUDNN_CROSS_CORRELATION}: the kernel is not flipped, as in PyTorch. */
  static final int CROSS_CORRELATION = 1;

  /**
   * {@code CUDNN_PROPAGATE_NAN}: a NaN in a pooling window or an activation's input gives NaN, as
   * in kiln's own kernels and in PyTorch's max pooling and ReLU. With {@code
   * CUDNN_NOT_PROPAGATE_NAN} (0), cuDNN may pass over a NaN, so a diverged value could vanish.
   */
  static final int PROPAGATE_NAN = 1;

  /**
   * {@code CUDNN_FMA_MATH}: float32 math without tensor cores. With the default math type, cuDNN
   * may round float32 inputs to TF32 on Ampere and newer GPUs, which misses kiln's float32
   * tolerances against the CPU reference.
   */
  static final int FMA_MATH = 3;

  private final CudnnDirect cudnn;
  private final CudnnFunctions functions;
  private final Arena arena = Arena.ofConfined();
  private final Deque<Runnable> destroyers = new ArrayDeque<>();

  CudnnDescriptors(CudnnDirect cudnn) {
    this.cudnn = cudnn;
    this.functions = cudnn.functions();
  }

  /** Returns a host float that cuDNN reads as alpha or beta during the call. */
  MemorySegment scalar(float value) {
    return arena.allocateFrom(JAVA_FLOAT, value);
  }

  /** Returns host memory for one {@code size_t} result. */
  MemorySegment sizeSlot() {
    return arena.allocate(java.lang.foreign.ValueLayout.JAVA_LONG);
  }

  /** Returns host memory of {@code bytes} bytes, for arrays that cuDNN fills. */
  MemorySegment bytes(long bytes) {
    return arena.allocate(bytes, 8);
  }

  /** Returns host memory for one {@code int} result. */
  MemorySegment intSlot() {
    return arena.allocate(JAVA_INT);
  }

  /** Creates a packed NCHW float tensor descriptor through {@code cudnnSetTensorNdDescriptor}. */
  MemorySegment tensor(Nchw shape) {
    MemorySegment descriptor =
        create(functions.createTensor, functions.destroyTensor, "cudnnCreateTensorDescriptor");
    MemorySegment dims = arena.allocateFrom(JAVA_INT, shape.dims());
    MemorySegment strides = arena.allocateFrom(JAVA_INT, shape.strides());
    cudnn.check(
        NativeLibrary.status(functions.setTensorNd, descriptor, DATA_FLOAT, 4, dims, strides),
        "cudnnSetTensorNdDescriptor",
        "dims=" + shape + ", packed NCHW strides");
    return descriptor;
  }

  /** Creates an empty tensor descriptor, for {@code cudnnDeriveBNTensorDescriptor} to fill. */
  MemorySegment emptyTensor() {
    return create(functions.createTensor, functions.destroyTensor, "cudnnCreateTensorDescriptor");
  }

  /** Creates a float filter descriptor of shape [K, C, R, S] in NCHW order. */
  MemorySegment filter(Nchw shape) {
    MemorySegment descriptor =
        create(functions.createFilter, functions.destroyFilter, "cudnnCreateFilterDescriptor");
    cudnn.check(
        NativeLibrary.status(
            functions.setFilter4d,
            descriptor,
            DATA_FLOAT,
            TENSOR_NCHW,
            shape.n(),
            shape.c(),
            shape.h(),
            shape.w()),
        "cudnnSetFilter4dDescriptor",
        "KCRS=" + shape);
    return descriptor;
  }

  /** Creates a 2d cross-correlation descriptor with float compute and FMA math. */
  MemorySegment convolution(Conv2dGeometry g) {
    MemorySegment descriptor =
        create(
            functions.createConvolution,
            functions.destroyConvolution,
            "cudnnCreateConvolutionDescriptor");
    cudnn.check(
        NativeLibrary.status(
            functions.setConvolution2d,
            descriptor,
            g.padHeight(),
            g.padWidth(),
            g.strideHeight(),
            g.strideWidth(),
            g.dilationHeight(),
            g.dilationWidth(),
            CROSS_CORRELATION,
            DATA_FLOAT),
        "cudnnSetConvolution2dDescriptor",
        g.toString());
    cudnn.check(
        NativeLibrary.status(functions.setConvolutionMathType, descriptor, FMA_MATH),
        "cudnnSetConvolutionMathType",
        "mathType=CUDNN_FMA_MATH");
    return descriptor;
  }

  /** Creates a 2d pooling descriptor. */
  MemorySegment pooling(VendorDnn.PoolingMode mode, Pool2dGeometry g) {
    MemorySegment descriptor =
        create(functions.createPooling, functions.destroyPooling, "cudnnCreatePoolingDescriptor");
    cudnn.check(
        NativeLibrary.status(
            functions.setPooling2d,
            descriptor,
            mode.cudnnValue,
            PROPAGATE_NAN,
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

  /** Creates an activation descriptor; the coefficient is unused by sigmoid, ReLU and tanh. */
  MemorySegment activation(VendorDnn.ActivationMode mode) {
    MemorySegment descriptor =
        create(
            functions.createActivation,
            functions.destroyActivation,
            "cudnnCreateActivationDescriptor");
    cudnn.check(
        NativeLibrary.status(
            functions.setActivation, descriptor, mode.cudnnValue, PROPAGATE_NAN, 0.0),
        "cudnnSetActivationDescriptor",
        mode.toString());
    return descriptor;
  }

  /** Calls a {@code cudnnCreate*Descriptor} and registers its destroy call. */
  private MemorySegment create(MethodHandle creator, MethodHandle destroyer, String name) {
    MemorySegment slot = arena.allocate(ADDRESS);
    cudnn.check(NativeLibrary.status(creator, slot), name, "");
    MemorySegment descriptor = slot.get(ADDRESS, 0);
    destroyers.push(() -> NativeLibrary.status(destroyer, descriptor));
    return descriptor;
  }

  /**
   * Destroys the descriptors, newest first, and frees the host memory. Destroy statuses are not
   * checked, because a failure here would hide the error of the call that the scope served.
   */
  @Override
  public void close() {
    while (!destroyers.isEmpty()) {
      destroyers.pop().run();
    }
    arena.close();
  }
}
