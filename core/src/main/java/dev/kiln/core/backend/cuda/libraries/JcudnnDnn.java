package dev.kiln.core.backend.cuda.libraries;

import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.check;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.pointer;
import static dev.kiln.core.backend.cuda.libraries.JcudnnScope.scalar;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import jcuda.JCudaVersion;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;
import jcuda.runtime.cudaStream_t;

/**
 * cuDNN through JCudnn ({@code org.jcuda:jcudnn}), whose JNI library links against {@code
 * libcudnn.so.8}, so it loads only on machines with cuDNN 8.
 *
 * <p>It makes the same calls as {@link CudnnDirect}, with the same descriptors, constants,
 * algorithm choice and dropout state. Loading is guarded by {@link #load}, which turns JCudnn's
 * {@link UnsatisfiedLinkError} into a {@link LibraryLoadException}.
 *
 * <p>NOTE: with the JCuda 12.6 jars that kiln uses, JCudnn 11.7 never finds its JNI library (see
 * {@link #loadFailure}), so this path is reached only if the jars are aligned, for example by a
 * JCudnn release built for JCuda 12. Until then cuDNN 8 machines use {@link CudnnDirect} too.
 */
public final class JcudnnDnn implements VendorDnn {

  /** The version of the jcudnn artifact that kiln depends on. */
  static final String JCUDNN_VERSION = "11.7.0";

  private final VendorDevice device;
  private final cudnnHandle handle = new cudnnHandle();
  private final JcudnnConvolution convolution;
  private final JcudnnDropout dropout;
  private boolean closed;

  private JcudnnDnn(VendorDevice device) {
    this.device = device;
    device.makeCurrent().run();
    JCudnn.setExceptionsEnabled(false);
    check(JCudnn.cudnnCreate(handle), "cudnnCreate", "");
    check(
        JCudnn.cudnnSetStream(handle, new cudaStream_t(device.jcudaStream())),
        "cudnnSetStream",
        "");
    this.convolution = new JcudnnConvolution(handle, device);
    this.dropout = new JcudnnDropout(handle, device);
  }

  /**
   * Loads JCudnn and creates a handle on the device's stream.
   *
   * @throws LibraryLoadException if JCudnn's JNI library or {@code libcudnn.so.8} cannot load
   * @throws VendorException if creating the handle fails
   */
  public static JcudnnDnn load(VendorDevice device) {
    try {
      JCudnn.initialize();
    } catch (LinkageError e) {
      throw new LibraryLoadException(loadFailure(JcudaLoadErrors.summarize(e), JCudaVersion.get()));
    }
    return new JcudnnDnn(device);
  }

  /**
   * Explains a JCudnn load failure. JCudnn 11.7 loads a JNI library named after the version of the
   * JCuda jar on the class path ({@code libJCudnn-<jcuda version>-linux-x86_64.so}), and
   * jcudnn-natives 11.7.0 contains only {@code libJCudnn-11.7.0-linux-x86_64.so}. So next to JCuda
   * 12.6 the JNI library is not found at all, whatever cuDNN the machine has.
   */
  static String loadFailure(String summary, String jcudaVersion) {
    if (summary.contains("No resource found") && !jcudaVersion.equals(JCUDNN_VERSION)) {
      return "JCudnn "
          + JCUDNN_VERSION
          + " failed to load ("
          + summary
          + "): it looks for a JNI library named after JCuda "
          + jcudaVersion
          + ", which jcudnn-natives "
          + JCUDNN_VERSION
          + " does not contain, so it cannot load next to JCuda "
          + jcudaVersion
          + " even where libcudnn.so.8 exists. kiln's JCuda path therefore has no cuDNN";
    }
    return "JCudnn "
        + JCUDNN_VERSION
        + " failed to load ("
        + summary
        + "): it needs libcudnn.so.8 (cuDNN 8) on the library path";
  }

  @Override
  public String description() {
    return "cuDNN " + CudnnDirect.versionText(JCudnn.cudnnGetVersion()) + " through JCudnn";
  }

  @Override
  public synchronized void convolutionForward(Conv2dGeometry g, long x, long w, long y) {
    convolution.forward(g, x, w, y);
  }

  @Override
  public synchronized void convolutionBackwardData(
      Conv2dGeometry g, long w, long dy, long dx, boolean accumulate) {
    convolution.backwardData(g, w, dy, dx, accumulate);
  }

  @Override
  public synchronized void convolutionBackwardFilter(
      Conv2dGeometry g, long x, long dy, long dw, boolean accumulate) {
    convolution.backwardFilter(g, x, dy, dw, accumulate);
  }

  @Override
  public synchronized void convolutionBackwardBias(
      Conv2dGeometry g, long dy, long db, boolean accumulate) {
    convolution.backwardBias(g, dy, db, accumulate);
  }

  @Override
  public synchronized void poolingForward(PoolingMode mode, Pool2dGeometry g, long x, long y) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      check(
          JCudnn.cudnnPoolingForward(
              handle,
              scope.pooling(mode, g),
              scalar(1f),
              scope.tensor(CudnnShapes.poolingInput(g)),
              pointer(x),
              scalar(0f),
              scope.tensor(CudnnShapes.poolingOutput(g)),
              pointer(y)),
          "cudnnPoolingForward",
          mode + ", " + g);
    }
  }

  @Override
  public synchronized void poolingBackward(
      PoolingMode mode, Pool2dGeometry g, long x, long y, long dy, long dx) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor input = scope.tensor(CudnnShapes.poolingInput(g));
      cudnnTensorDescriptor output = scope.tensor(CudnnShapes.poolingOutput(g));
      check(
          JCudnn.cudnnPoolingBackward(
              handle,
              scope.pooling(mode, g),
              scalar(1f),
              output,
              pointer(y),
              output,
              pointer(dy),
              input,
              pointer(x),
              scalar(0f),
              input,
              pointer(dx)),
          "cudnnPoolingBackward",
          mode + ", " + g);
    }
  }

  @Override
  public synchronized void batchNormForwardTraining(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      double momentum,
      double epsilon,
      long runningMean,
      long runningVariance,
      long saveMean,
      long saveInvStd) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(shape);
      check(
          JCudnn.cudnnBatchNormalizationForwardTraining(
              handle,
              CudnnDirectLayers.BATCHNORM_SPATIAL,
              scalar(1f),
              scalar(0f),
              tensor,
              pointer(x),
              tensor,
              pointer(y),
              parameters(scope, tensor),
              pointer(scale),
              pointer(bias),
              momentum,
              pointer(runningMean),
              pointer(runningVariance),
              epsilon,
              pointer(saveMean),
              pointer(saveInvStd)),
          "cudnnBatchNormalizationForwardTraining",
          "shape=" + shape + ", momentum=" + momentum + ", epsilon=" + epsilon);
    }
  }

  @Override
  public synchronized void batchNormForwardInference(
      Nchw shape,
      long x,
      long y,
      long scale,
      long bias,
      long runningMean,
      long runningVariance,
      double epsilon) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(shape);
      check(
          JCudnn.cudnnBatchNormalizationForwardInference(
              handle,
              CudnnDirectLayers.BATCHNORM_SPATIAL,
              scalar(1f),
              scalar(0f),
              tensor,
              pointer(x),
              tensor,
              pointer(y),
              parameters(scope, tensor),
              pointer(scale),
              pointer(bias),
              pointer(runningMean),
              pointer(runningVariance),
              epsilon),
          "cudnnBatchNormalizationForwardInference",
          "shape=" + shape + ", epsilon=" + epsilon);
    }
  }

  @Override
  public synchronized void batchNormBackward(
      Nchw shape,
      long x,
      long dy,
      long dx,
      long scale,
      long dScale,
      long dBias,
      double epsilon,
      long saveMean,
      long saveInvStd) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(shape);
      check(
          JCudnn.cudnnBatchNormalizationBackward(
              handle,
              CudnnDirectLayers.BATCHNORM_SPATIAL,
              scalar(1f),
              scalar(0f),
              scalar(1f),
              scalar(0f),
              tensor,
              pointer(x),
              tensor,
              pointer(dy),
              tensor,
              pointer(dx),
              parameters(scope, tensor),
              pointer(scale),
              pointer(dScale),
              pointer(dBias),
              epsilon,
              pointer(saveMean),
              pointer(saveInvStd)),
          "cudnnBatchNormalizationBackward",
          "shape=" + shape + ", epsilon=" + epsilon);
    }
  }

  private static cudnnTensorDescriptor parameters(JcudnnScope scope, cudnnTensorDescriptor input) {
    cudnnTensorDescriptor parameters = scope.emptyTensor();
    check(
        JCudnn.cudnnDeriveBNTensorDescriptor(
            parameters, input, CudnnDirectLayers.BATCHNORM_SPATIAL),
        "cudnnDeriveBNTensorDescriptor",
        "mode=CUDNN_BATCHNORM_SPATIAL");
    return parameters;
  }

  @Override
  public synchronized long dropoutReserveBytes(int elements) {
    return dropout.reserveBytes(elements);
  }

  @Override
  public synchronized void dropoutForward(
      float probability, long seed, int elements, long x, long y, long reserve, long reserveBytes) {
    dropout.forward(probability, seed, elements, x, y, reserve, reserveBytes);
  }

  @Override
  public synchronized void dropoutBackward(
      float probability,
      long seed,
      int elements,
      long dy,
      long dx,
      long reserve,
      long reserveBytes) {
    dropout.backward(probability, seed, elements, dy, dx, reserve, reserveBytes);
  }

  @Override
  public synchronized void activationForward(ActivationMode mode, int elements, long x, long y) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(Nchw.flat(elements));
      check(
          JCudnn.cudnnActivationForward(
              handle,
              scope.activation(mode),
              scalar(1f),
              tensor,
              pointer(x),
              scalar(0f),
              tensor,
              pointer(y)),
          "cudnnActivationForward",
          mode + ", elements=" + elements);
    }
  }

  @Override
  public synchronized void activationBackward(
      ActivationMode mode, int elements, long y, long dy, long x, long dx) {
    device.makeCurrent().run();
    try (JcudnnScope scope = new JcudnnScope()) {
      cudnnTensorDescriptor tensor = scope.tensor(Nchw.flat(elements));
      check(
          JCudnn.cudnnActivationBackward(
              handle,
              scope.activation(mode),
              scalar(1f),
              tensor,
              pointer(y),
              tensor,
              pointer(dy),
              tensor,
              pointer(x),
              scalar(0f),
              tensor,
              pointer(dx)),
          "cudnnActivationBackward",
          mode + ", elements=" + elements);
    }
  }

  /** Releases the dropout states and destroys the handle. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent().run();
    dropout.close();
    check(JCudnn.cudnnDestroy(handle), "cudnnDestroy", "");
  }
}
