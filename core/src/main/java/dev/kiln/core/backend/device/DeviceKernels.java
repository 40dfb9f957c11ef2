package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.CudaException;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.cuda.libraries.VendorBindings;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.DeviceStorage;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * One device's runtime together with a launcher for every kernel family: what the tensor ops call
 * when their operands live on {@code cuda:N} or {@code emulated}.
 *
 * <p>{@link #of(Device)} opens each device once per process, on first use, and keeps it open. The
 * launchers hold no per-call state, so one set serves every thread. The one shared state is cuDNN's
 * dropout generator (see {@link DeviceDropout}): threads that run dropout with the same probability
 * on one device draw from one sequence, in the order their calls arrive. A device that cannot be
 * opened is reported with the reason, and nothing is cached for it, so a later call tries again.
 *
 * <p>On a CUDA device the matrix products go to cuBLAS, and convolution, pooling, batch
 * normalization and dropout to cuDNN, where {@link VendorBindings} loaded them. The choice and its
 * reason are logged once, and {@code -Dkiln.cuda.vendor} forces one path. With {@code
 * -Dkiln.cuda.vendor=kiln}, every layer runs on kiln's kernels. kiln's own kernels serve everything
 * else (elementwise ops and activations, reductions, losses, optimizers, layout), and every device
 * where the libraries are absent.
 *
 * <p>NOTE: the cuBLAS and cuDNN routes are tested only against host stand-ins on the emulated
 * device (see {@code VendorRoutingTest}). The {@code Vendor*GpuTest} classes check each binding
 * call on a GPU, but no GPU has run them yet.
 *
 * @param runtime the device's memory, copies and launches
 * @param libraries which library serves which layers, and why, for messages
 */
public record DeviceKernels(
    DeviceRuntime runtime,
    DeviceElementwise elementwise,
    DeviceReductions reductions,
    DeviceMatmul matmul,
    DeviceConv conv,
    DevicePooling pooling,
    DeviceBatchNorm batchNorm,
    DeviceDropout dropout,
    DeviceLosses losses,
    DeviceOptimizers optimizers,
    DeviceLayout layout,
    String libraries) {

  private static final Map<Device, DeviceKernels> OPEN = new HashMap<>();

  /** Builds every launcher over one runtime, all of them on kiln's own kernels. */
  public static DeviceKernels over(DeviceRuntime runtime) {
    return over(runtime, null, null, "kiln's own kernels for every layer");
  }

  /**
   * Builds every launcher over one runtime, with the products on {@code blas}, and the
   * convolutions, pooling, batch normalization and dropout on {@code dnn}, where those are
   * non-null. Each call of the launchers into {@code blas} or {@code dnn} counts in the runtime's
   * {@link DeviceRuntime#work()}.
   */
  public static DeviceKernels over(
      DeviceRuntime runtime, VendorBlas blas, VendorDnn dnn, String libraries) {
    blas = LibraryCallCounting.wrap(VendorBlas.class, blas, "cublas", runtime.counters());
    dnn = LibraryCallCounting.wrap(VendorDnn.class, dnn, "cudnn", runtime.counters());
    DeviceMatmul matmul = new DeviceMatmul(runtime, blas);
    return new DeviceKernels(
        runtime,
        new DeviceElementwise(runtime),
        new DeviceReductions(runtime),
        matmul,
        new DeviceConv(runtime, matmul, dnn),
        new DevicePooling(runtime, dnn),
        new DeviceBatchNorm(runtime, dnn),
        new DeviceDropout(runtime, dnn),
        new DeviceLosses(runtime),
        new DeviceOptimizers(runtime),
        new DeviceLayout(runtime),
        libraries);
  }

  /**
   * Returns the kernels of {@code device}, opening it on first use.
   *
   * @throws IllegalArgumentException for {@link Device#CPU}, whose ops run in Java
   * @throws IllegalStateException if the device cannot be used, with the reason (no driver, no GPU,
   *     no fatbin in the kernels jar, no emulation library) and what to do instead
   * @throws dev.kiln.core.backend.cuda.libraries.LibraryLoadException if {@code -Dkiln.cuda.vendor}
   *     forces a library path that does not load
   */
  public static synchronized DeviceKernels of(Device device) {
    DeviceKernels kernels = OPEN.get(device);
    if (kernels == null) {
      DeviceRuntime runtime = open(device);
      runtime.allocator().setReclaimer(() -> DeviceStorage.collectUnreachable(runtime));
      if (runtime instanceof CudaRuntime cuda) {
        VendorBindings vendors = VendorBindings.of(cuda.context());
        String libraries =
            vendors.blasSelection().reason() + "; " + vendors.dnnSelection().reason();
        kernels = over(runtime, vendors.blas().orElse(null), vendors.dnn().orElse(null), libraries);
      } else {
        kernels = over(runtime);
      }
      OPEN.put(device, kernels);
    }
    return kernels;
  }

  /**
   * Opens {@code device} as {@link #of} does, and returns empty where it opened, or else why it
   * cannot be used, without a final period, so that a caller can add what to do instead.
   */
  public static Optional<String> openFailure(Device device) {
    try {
      of(device);
      return Optional.empty();
    } catch (IllegalStateException | CudaException | LibraryLoadException e) {
      return Optional.of(e.getMessage().replaceAll("\\.$", ""));
    }
  }

  /**
   * Replaces the kernels that {@link #of(Device)} returns for {@code device}, and returns the
   * previous ones, or null where the device was not open. Tensors created afterwards use the new
   * kernels, and tensors created before keep theirs. Tests use this to send a device's ops through
   * host stand-ins for cuBLAS and cuDNN, and restore the previous kernels when they finish.
   */
  static synchronized DeviceKernels replace(Device device, DeviceKernels kernels) {
    return OPEN.put(device, kernels);
  }

  private static DeviceRuntime open(Device device) {
    return switch (device.kind()) {
      case CPU ->
          throw new IllegalArgumentException(
              "the CPU has no device kernels: ops on cpu tensors run in Java");
      case EMULATED -> EmulatedRuntime.create();
      case CUDA -> {
        CudaAvailability availability = CudaAvailability.check(device.index());
        if (!availability.usable()) {
          throw new IllegalStateException(availability.message());
        }
        yield CudaRuntime.open(device.index());
      }
    };
  }
}
