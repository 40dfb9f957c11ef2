package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.ADDRESS;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * cuDNN bound directly through {@code java.lang.foreign}, for machines with cuDNN 9, where JCudnn,
 * built for {@code libcudnn.so.8}, cannot load.
 *
 * <p>cuDNN's legacy API works with a handle ({@code cudnnHandle_t}), which contains the library's
 * state for one device and the stream that its kernels go to, and with descriptors, which describe
 * the shapes (see {@link CudnnShapes} and {@link CudnnDescriptors}). This class owns the handle and
 * implements {@link VendorDnn} by delegating convolutions to {@link CudnnDirectConvolution} and the
 * other layers to {@link CudnnDirectLayers}.
 *
 * <p>Every status is checked, and a failure becomes a {@link VendorException} that names the call
 * and carries {@code cudnnGetErrorString}'s text, which is right for the loaded version's
 * numbering.
 */
public final class CudnnDirect implements VendorDnn {

  private final NativeLibrary library;
  private final List<NativeLibrary> dependencies;
  private final CudnnFunctions functions;
  private final VendorDevice device;
  private final MemorySegment handle;
  private final long version;
  private final CudnnDirectConvolution convolution;
  private final CudnnDirectLayers layers;
  private boolean closed;

  private CudnnDirect(
      NativeLibrary library,
      List<NativeLibrary> dependencies,
      CudnnFunctions functions,
      VendorDevice device) {
    this.library = library;
    this.dependencies = dependencies;
    this.functions = functions;
    this.device = device;
    this.version = (long) NativeLibrary.invoke(functions.getVersion);
    device.makeCurrent().run();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment slot = arena.allocate(ADDRESS);
      check(NativeLibrary.status(functions.create, slot), "cudnnCreate", "");
      this.handle = slot.get(ADDRESS, 0);
    }
    try {
      check(
          NativeLibrary.status(
              functions.setStream, handle, MemorySegment.ofAddress(device.stream())),
          "cudnnSetStream",
          "stream=0x" + Long.toHexString(device.stream()));
    } catch (RuntimeException e) {
      // The handle is destroyed before the caller unloads the library.
      NativeLibrary.status(functions.destroy, handle);
      throw e;
    }
    this.convolution = new CudnnDirectConvolution(this);
    this.layers = new CudnnDirectLayers(this);
  }

  /**
   * Loads cuDNN from the best file that {@code discovery} finds and that has every function kiln
   * binds, with the cuBLASLt and NVRTC of the CUDA version that it was built for (see {@link
   * CudnnDependencies}), creates a handle and binds it to the device's stream.
   *
   * @throws LibraryLoadException if no cuDNN file loads with every function and with its cuBLASLt
   * @throws VendorException if creating the handle fails
   */
  public static CudnnDirect load(LibraryDiscovery discovery, VendorDevice device) {
    return NativeLibrary.open(
        discovery.find(VendorLibrary.CUDNN), library -> bind(library, discovery, device));
  }

  /**
   * Binds cuDNN's functions from one opened file and loads its dependencies. {@link
   * NativeLibrary#open} closes the file where this throws, so it closes only the dependencies.
   */
  private static CudnnDirect bind(
      NativeLibrary library, LibraryDiscovery discovery, VendorDevice device) {
    CudnnFunctions functions = new CudnnFunctions(library);
    long cudart = (long) NativeLibrary.invoke(functions.getCudartVersion);
    List<NativeLibrary> dependencies =
        CudnnDependencies.load(discovery, CudnnDependencies.cudaMajor(cudart), library.path());
    try {
      return new CudnnDirect(library, dependencies, functions, device);
    } catch (RuntimeException e) {
      dependencies.forEach(NativeLibrary::close);
      throw e;
    }
  }

  /**
   * Returns cuDNN's version number as {@code cudnnGetVersion} reports it: major * 10000 + minor *
   * 100 + patch from cuDNN 9 on, and major * 1000 + minor * 100 + patch before.
   */
  public long version() {
    return version;
  }

  /** Formats a {@code cudnnGetVersion} number as major.minor.patch. */
  static String versionText(long version) {
    if (version >= 90000) {
      return version / 10000 + "." + version % 10000 / 100 + "." + version % 100;
    }
    return version / 1000 + "." + version % 1000 / 100 + "." + version % 100;
  }

  @Override
  public String description() {
    StringBuilder text =
        new StringBuilder("cuDNN ")
            .append(versionText(version))
            .append(" through java.lang.foreign, from ")
            .append(library.path());
    for (NativeLibrary dependency : dependencies) {
      text.append(", with ").append(dependency.path());
    }
    return text.append(CublasDirect.passedOverText(library)).toString();
  }

  CudnnFunctions functions() {
    return functions;
  }

  MemorySegment handle() {
    return handle;
  }

  VendorDevice device() {
    return device;
  }

  /** Opens a scope for the descriptors of one call; close it after the call. */
  CudnnDescriptors descriptors() {
    return new CudnnDescriptors(this);
  }

  /** Returns {@code cudnnGetErrorString}'s text for a status. */
  String errorString(int status) {
    MemorySegment text = (MemorySegment) NativeLibrary.invoke(functions.getErrorString, status);
    return NativeLibrary.cString(text, 256);
  }

  /**
   * Throws unless {@code status} is {@code CUDNN_STATUS_SUCCESS} (0 in every cuDNN version).
   *
   * @throws VendorException naming the call, the status and cuDNN's own text for it
   */
  void check(int status, String call, String arguments) {
    if (status != 0) {
      throw new VendorException(
          call, status, StatusNames.cudnn(status, this::errorString), arguments);
    }
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
    layers.poolingForward(mode, g, x, y);
  }

  @Override
  public synchronized void poolingBackward(
      PoolingMode mode, Pool2dGeometry g, long x, long y, long dy, long dx) {
    layers.poolingBackward(mode, g, x, y, dy, dx);
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
    layers.batchNormForwardTraining(
        shape,
        x,
        y,
        scale,
        bias,
        momentum,
        epsilon,
        runningMean,
        runningVariance,
        saveMean,
        saveInvStd);
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
    layers.batchNormForwardInference(
        shape, x, y, scale, bias, runningMean, runningVariance, epsilon);
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
    layers.batchNormBackward(shape, x, dy, dx, scale, dScale, dBias, epsilon, saveMean, saveInvStd);
  }

  @Override
  public synchronized long dropoutReserveBytes(int elements) {
    return layers.dropoutReserveBytes(elements);
  }

  @Override
  public synchronized void dropoutForward(
      float probability, long seed, int elements, long x, long y, long reserve, long reserveBytes) {
    layers.dropoutForward(probability, seed, elements, x, y, reserve, reserveBytes);
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
    layers.dropoutBackward(probability, seed, elements, dy, dx, reserve, reserveBytes);
  }

  @Override
  public synchronized void activationForward(ActivationMode mode, int elements, long x, long y) {
    layers.activationForward(mode, elements, x, y);
  }

  @Override
  public synchronized void activationBackward(
      ActivationMode mode, int elements, long y, long dy, long x, long dx) {
    layers.activationBackward(mode, elements, y, dy, x, dx);
  }

  /**
   * Releases the dropout states and destroys the handle. The library stays loaded, because
   * unloading it while cuDNN's own threads may still run is unsafe.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent().run();
    layers.close();
    check(NativeLibrary.status(functions.destroy, handle), "cudnnDestroy", "");
  }
}
