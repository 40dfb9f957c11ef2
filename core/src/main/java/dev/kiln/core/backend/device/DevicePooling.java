package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;

import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.kernels.Dim3;

/**
 * Launches 2d max and average pooling on NCHW data, with the kernels of {@code pooling.cu} and the
 * shapes of {@link Pool2dGeometry}, as the CPU's {@code Pool2dKernels} take them.
 *
 * <p>Every pooling kernel is a single launch with one thread per output value (forward) or per
 * input pixel (backward). The backward kernels gather, each input pixel visiting the windows that
 * contain it, instead of scattering each window's gradient with atomics: overlapping windows then
 * add up in a fixed order, and the result is the same on every run.
 */
public final class DevicePooling {

  private final DeviceRuntime runtime;
  private final VendorDnn dnn;

  /** Creates the launcher for one device, which runs kiln's own kernels. */
  public DevicePooling(DeviceRuntime runtime) {
    this(runtime, null);
  }

  /**
   * Creates the launcher for one device whose {@link #cudnnForward} and {@link #cudnnBackward} call
   * {@code dnn}, which may be null where cuDNN is absent.
   */
  public DevicePooling(DeviceRuntime runtime, VendorDnn dnn) {
    this.runtime = runtime;
    this.dnn = dnn;
  }

  /** Returns whether this launcher has cuDNN, so that {@link #cudnnForward} may be called. */
  public boolean hasCudnn() {
    return dnn != null;
  }

  /**
   * Writes pool(x) to y with cuDNN. Unlike {@link #maxForward}, cuDNN keeps no argmax: its backward
   * pass finds each window's maximum again from x and y, so the caller keeps both until then.
   *
   * <p>NOTE: where a window contains equal maxima, cuDNN's backward may send the gradient to
   * another of them than kiln's first-maximum rule does; the values of the gradient sum agree.
   *
   * @throws IllegalStateException if this launcher has no cuDNN
   */
  public void cudnnForward(
      VendorDnn.PoolingMode mode, DeviceBuffer x, Pool2dGeometry g, DeviceBuffer y) {
    requireFloats("pool input", x, g.inputSize());
    requireFloats("pool output", y, g.outputSize());
    cudnn().poolingForward(mode, g, x.address(), y.address());
    DeviceRuntime.keepReachable(x, y);
  }

  /**
   * Overwrites gradX with the gradient of the pooling that {@link #cudnnForward} computed, from its
   * input x, its output y and the output gradient gradY.
   *
   * @throws IllegalStateException if this launcher has no cuDNN
   */
  public void cudnnBackward(
      VendorDnn.PoolingMode mode,
      Pool2dGeometry g,
      DeviceBuffer x,
      DeviceBuffer y,
      DeviceBuffer gradY,
      DeviceBuffer gradX) {
    requireFloats("pool input", x, g.inputSize());
    requireFloats("pool output", y, g.outputSize());
    requireFloats("pool output gradient", gradY, g.outputSize());
    requireFloats("pool input gradient", gradX, g.inputSize());
    cudnn().poolingBackward(mode, g, x.address(), y.address(), gradY.address(), gradX.address());
    DeviceRuntime.keepReachable(x, y, gradY, gradX);
  }

  private VendorDnn cudnn() {
    if (dnn == null) {
      throw new IllegalStateException(
          "this device's pooling launcher has no cuDNN: call hasCudnn() first, or use the kiln"
              + " kernels");
    }
    return dnn;
  }

  /**
   * Writes the maximum of each window to y and the flat index into x (over the whole batch) of the
   * chosen element to the int buffer {@code argmax}, as {@code Pool2dKernels.maxForward}: padding
   * is never chosen, ties go to the first maximum in row-major window order, and NaN propagates.
   *
   * <p>Launches {@code kiln_pool_max_forward} once, one thread per output.
   */
  public void maxForward(DeviceBuffer x, Pool2dGeometry g, DeviceBuffer y, DeviceBuffer argmax) {
    requireFloats("pool input", x, g.inputSize());
    requireFloats("pool output", y, g.outputSize());
    requireFloats("pool argmax", argmax, g.outputSize());
    Dim3 block = blockFor(g.outputSize());
    runtime.launch(
        "kiln_pool_max_forward",
        gridFor(g.outputSize(), block),
        block,
        0,
        x,
        y,
        argmax,
        g.batch(),
        g.channels(),
        g.inHeight(),
        g.inWidth(),
        g.kernelHeight(),
        g.kernelWidth(),
        g.strideHeight(),
        g.strideWidth(),
        g.padHeight(),
        g.padWidth());
  }

  /**
   * Overwrites gradX with the gradient of max pooling: each input element receives the sum of gradY
   * over the windows that chose it, as {@code Pool2dKernels.maxBackward}.
   *
   * <p>Launches {@code kiln_pool_max_backward} once, one thread per input pixel, reading the argmax
   * that {@link #maxForward} wrote.
   */
  public void maxBackward(
      DeviceBuffer gradY, DeviceBuffer argmax, Pool2dGeometry g, DeviceBuffer gradX) {
    requireFloats("pool output gradient", gradY, g.outputSize());
    requireFloats("pool argmax", argmax, g.outputSize());
    requireFloats("pool input gradient", gradX, g.inputSize());
    Dim3 block = blockFor(g.inputSize());
    runtime.launch(
        "kiln_pool_max_backward",
        gridFor(g.inputSize(), block),
        block,
        0,
        gradY,
        argmax,
        gradX,
        g.batch(),
        g.channels(),
        g.inHeight(),
        g.inWidth(),
        g.kernelHeight(),
        g.kernelWidth(),
        g.strideHeight(),
        g.strideWidth(),
        g.padHeight(),
        g.padWidth());
  }

  /**
   * Writes the mean of each window to y, the padding's zeros included (the divisor is always
   * kernelHeight * kernelWidth), as {@code Pool2dKernels.avgForward}.
   *
   * <p>Launches {@code kiln_pool_avg_forward} once, one thread per output, with countIncludePad =
   * 1, the only mode of the CPU kernel.
   */
  public void avgForward(DeviceBuffer x, Pool2dGeometry g, DeviceBuffer y) {
    requireFloats("pool input", x, g.inputSize());
    requireFloats("pool output", y, g.outputSize());
    Dim3 block = blockFor(g.outputSize());
    runtime.launch(
        "kiln_pool_avg_forward", gridFor(g.outputSize(), block), block, 0, avgArgs(x, y, g));
  }

  /**
   * Overwrites gradX with the gradient of average pooling, as {@code Pool2dKernels.avgBackward}:
   * each input element receives gradY / (kernelHeight * kernelWidth) from every window that
   * contains it.
   *
   * <p>Launches {@code kiln_pool_avg_backward} once, one thread per input pixel.
   */
  public void avgBackward(DeviceBuffer gradY, Pool2dGeometry g, DeviceBuffer gradX) {
    requireFloats("pool output gradient", gradY, g.outputSize());
    requireFloats("pool input gradient", gradX, g.inputSize());
    Dim3 block = blockFor(g.inputSize());
    runtime.launch(
        "kiln_pool_avg_backward",
        gridFor(g.inputSize(), block),
        block,
        0,
        avgArgs(gradY, gradX, g));
  }

  /** Returns the arguments of both average-pooling kernels, which share one parameter list. */
  private static Object[] avgArgs(DeviceBuffer in, DeviceBuffer out, Pool2dGeometry g) {
    return new Object[] {
      in,
      out,
      g.batch(),
      g.channels(),
      g.inHeight(),
      g.inWidth(),
      g.kernelHeight(),
      g.kernelWidth(),
      g.strideHeight(),
      g.strideWidth(),
      g.padHeight(),
      g.padWidth(),
      1 // countIncludePad: the CPU kernel always divides by the full kernel area
    };
  }
}
