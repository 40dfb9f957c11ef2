package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dKernels;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.device.DevicePooling;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;

/** Max and average pooling over [N, C, H, W] inputs, in PyTorch's floor mode. */
public final class Pooling {
  private Pooling() {}

  /**
   * Takes the maximum of each window. Padding counts as minus infinity. The gradient goes to the
   * element that was the maximum (the first one on ties).
   */
  public static Tensor maxPool2d(Tensor x, int[] kernel, int[] stride, int[] padding) {
    Checks.rank("maxPool2d", x, 4, "[N, C, H, W]");
    Pool2dGeometry g = geometry(x, kernel, stride, padding);
    if (g.batch() == 0) {
      // PyTorch 1.13 returns an empty output and an empty input gradient.
      return ZeroGradients.record("maxPool2d", outputFor(x, g), x);
    }
    if (!x.device().isCpu()) {
      return onDevice("maxPool2d", x, g, true);
    }
    Tensor out = outputFor(x, g);
    // Backward needs only the input's dtype and shape besides argmax, so it saves those and not
    // the input, which is then freed as soon as nothing else uses it.
    DType dtype = x.dtype();
    int[] shape = x.shape();
    // The argmax is float32 storage whose slots contain int bits, as on a device, not an int[].
    // Storage and the thread's ArrayPool handle only the tensor dtypes, so as float32 storage the
    // argmax follows the rules of every other tensor without a third array kind. Inside a memory
    // scope, the scope owns it and the next step reuses its array. Outside one, the garbage
    // collector frees it. Any use after the scope released it throws.
    Storage argmax = Storage.allocateUninitialized(DType.FLOAT32, out.numel(), Device.CPU);
    Pool2dKernels.maxForward(x.storage(), g, out.storage(), argmax);
    return Autograd.record(
        "maxPool2d",
        out,
        grad -> {
          requireUnreleased(argmax);
          // The kernel zeroes the gradient before it adds to it, so no fill is needed here.
          Tensor gradInput = Tensor.empty(dtype, Device.CPU, shape);
          Pool2dKernels.maxBackward(grad.storage(), argmax, g, gradInput.storage());
          return new Tensor[] {gradInput};
        },
        x);
  }

  /**
   * Throws the error for a backward pass that runs after the scope of its forward pass closed. By
   * then a later step may have reused the argmax's array, so reading it would route the gradient to
   * wrong elements.
   */
  private static void requireUnreleased(Storage argmax) {
    if (argmax.isReleased()) {
      throw new IllegalStateException(
          "maxPool2d: the argmax that the forward pass saved for backward was released when the"
              + " memory scope of the forward pass closed. Run backward before that scope closes.");
    }
  }

  /** Averages each window; padded zeros count towards the divisor (count_include_pad=True). */
  public static Tensor avgPool2d(Tensor x, int[] kernel, int[] stride, int[] padding) {
    Checks.rank("avgPool2d", x, 4, "[N, C, H, W]");
    Pool2dGeometry g = geometry(x, kernel, stride, padding);
    if (g.batch() == 0) {
      // PyTorch 1.13 returns an empty output and an empty input gradient.
      return ZeroGradients.record("avgPool2d", outputFor(x, g), x);
    }
    if (!x.device().isCpu()) {
      return onDevice("avgPool2d", x, g, false);
    }
    Tensor out = outputFor(x, g);
    Pool2dKernels.avgForward(x.storage(), g, out.storage());
    DType dtype = x.dtype();
    int[] shape = x.shape();
    return Autograd.record(
        "avgPool2d",
        out,
        grad -> {
          Tensor gradInput = Tensor.empty(dtype, Device.CPU, shape);
          Pool2dKernels.avgBackward(grad.storage(), g, gradInput.storage());
          return new Tensor[] {gradInput};
        },
        x);
  }

  /**
   * Pools on a device. With cuDNN the backward pass reads the input and output again, so the graph
   * keeps both. kiln's max kernel instead keeps the position of each maximum on the device, in a
   * tensor whose float slots contain int bits, and its average kernel needs neither.
   */
  private static Tensor onDevice(String name, Tensor x, Pool2dGeometry g, boolean max) {
    DevicePooling pooling = kernelsOf(x).pooling();
    Tensor out = outputFor(x, g);
    if (pooling.hasCudnn()) {
      VendorDnn.PoolingMode mode =
          max ? VendorDnn.PoolingMode.MAX : VendorDnn.PoolingMode.AVERAGE_INCLUDE_PADDING;
      pooling.cudnnForward(mode, bufferOf(x), g, bufferOf(out));
      return Autograd.record(
          name,
          out,
          grad -> {
            Tensor gradInput = Tensor.emptyLike(x);
            pooling.cudnnBackward(
                mode, g, bufferOf(x), bufferOf(out), bufferOf(grad), bufferOf(gradInput));
            return new Tensor[] {gradInput};
          },
          x);
    }
    DType dtype = x.dtype();
    Device device = x.device();
    int[] shape = x.shape();
    if (max) {
      Tensor argmax = Tensor.emptyLike(out);
      pooling.maxForward(bufferOf(x), g, bufferOf(out), bufferOf(argmax));
      return Autograd.record(
          name,
          out,
          grad -> {
            Tensor gradInput = Tensor.empty(dtype, device, shape);
            pooling.maxBackward(bufferOf(grad), bufferOf(argmax), g, bufferOf(gradInput));
            return new Tensor[] {gradInput};
          },
          x);
    }
    pooling.avgForward(bufferOf(x), g, bufferOf(out));
    return Autograd.record(
        name,
        out,
        grad -> {
          Tensor gradInput = Tensor.empty(dtype, device, shape);
          pooling.avgBackward(bufferOf(grad), g, bufferOf(gradInput));
          return new Tensor[] {gradInput};
        },
        x);
  }

  private static Tensor outputFor(Tensor x, Pool2dGeometry g) {
    return Tensor.empty(
        x.dtype(), x.device(), g.batch(), g.channels(), g.outHeight(), g.outWidth());
  }

  private static Pool2dGeometry geometry(Tensor x, int[] kernel, int[] stride, int[] padding) {
    return new Pool2dGeometry(
        x.size(0),
        x.size(1),
        x.size(2),
        x.size(3),
        kernel[0],
        kernel[1],
        stride[0],
        stride[1],
        padding[0],
        padding[1]);
  }
}
