package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.CudaContext;
import dev.kiln.core.backend.cuda.CudaModule;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;
import dev.kiln.kernels.KernelImage;
import java.lang.ref.Reference;
import jcuda.driver.CUdeviceptr;

/**
 * The {@link DeviceRuntime} of a CUDA device {@code cuda:N}: kiln's kernels from the fatbin that
 * the kernels module built with nvcc, launched through the device's shared {@link CudaContext}.
 *
 * <p>The context is shared by everything in the process that uses the device. The fatbin is loaded
 * into it once, as the module named {@link #MODULE}, which every runtime of the device then shares.
 *
 * <p>NOTE: this class has so far run only where no GPU is present, where its tests skip. Its
 * launches and copies are untested on real hardware until the device tests run on a CUDA machine.
 */
public final class CudaRuntime implements DeviceRuntime {

  /** Name of the fatbin's module in the device's context. */
  static final String MODULE = "kiln kernels";

  private final CudaContext context;
  private final CudaModule module;
  private final ConstantInts constants = new ConstantInts(this);
  private final DeviceCounters counters = new DeviceCounters();

  private CudaRuntime(CudaContext context, byte[] fatbin) {
    this.context = context;
    this.module = context.module(MODULE, fatbin);
  }

  /**
   * Opens device {@code cuda:deviceIndex} and loads kiln's kernels onto it.
   *
   * <p>Call {@link dev.kiln.core.backend.cuda.CudaAvailability#check(int)} first where a readable
   * reason for an unusable device is wanted, because this method throws instead.
   *
   * @throws IllegalStateException if the kernels jar has no fatbin, with the reason the build
   *     recorded and what to do about it
   * @throws dev.kiln.core.backend.cuda.CudaException if the driver rejects the device or the fatbin
   */
  public static CudaRuntime open(int deviceIndex) {
    byte[] fatbin =
        KernelImage.fatbin()
            .orElseThrow(
                () ->
                    new IllegalStateException(
                        "cannot run kiln's kernels on cuda:"
                            + deviceIndex
                            + ": "
                            + KernelImage.missingReason()));
    return new CudaRuntime(CudaContext.of(deviceIndex), fatbin);
  }

  /** Returns the device's shared context, which the cuBLAS and cuDNN bindings also use. */
  public CudaContext context() {
    return context;
  }

  @Override
  public String name() {
    return context.toString();
  }

  @Override
  public int multiprocessors() {
    return context.multiprocessors();
  }

  @Override
  public ConstantInts constants() {
    return constants;
  }

  @Override
  public DeviceCounters counters() {
    return counters;
  }

  @Override
  public CachingAllocator allocator() {
    return context.allocator();
  }

  @Override
  public void copyToDevice(float[] src, int srcIndex, DeviceBuffer dst, long dstIndex, int count) {
    CopyRanges.requireArrayRange("the source of a copy to the device", src.length, srcIndex, count);
    CopyRanges.requireDeviceRange("the target of a copy to the device", dst, dstIndex, count);
    context.copies().toDevice(src, srcIndex, dst, dstIndex * Float.BYTES, count);
    DeviceRuntime.keepReachable(dst);
    counters.countCopyToDevice((long) count * Float.BYTES);
  }

  @Override
  public void copyToHost(DeviceBuffer src, long srcIndex, float[] dst, int dstIndex, int count) {
    CopyRanges.requireDeviceRange("the source of a copy to the host", src, srcIndex, count);
    CopyRanges.requireArrayRange("the target of a copy to the host", dst.length, dstIndex, count);
    context.copies().toHost(src, srcIndex * Float.BYTES, dst, dstIndex, count);
    DeviceRuntime.keepReachable(src);
    counters.countCopyToHost((long) count * Float.BYTES);
  }

  @Override
  public void copyWithinDevice(
      DeviceBuffer src, long srcIndex, DeviceBuffer dst, long dstIndex, long count) {
    CopyRanges.requireDeviceRange("the source of a copy within the device", src, srcIndex, count);
    CopyRanges.requireDeviceRange("the target of a copy within the device", dst, dstIndex, count);
    context
        .copies()
        .deviceToDevice(
            src, srcIndex * Float.BYTES, dst, dstIndex * Float.BYTES, count * Float.BYTES);
    DeviceRuntime.keepReachable(src, dst);
    counters.countCopyWithinDevice(count * Float.BYTES);
  }

  /**
   * Queues a launch of one of kiln's kernels. A bare {@code null} argument is rejected, as {@link
   * LaunchArguments} explains, and an empty {@link java.util.Optional} reaches the kernel as the
   * null pointer.
   */
  @Override
  public void launch(String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args) {
    // A fresh CUdeviceptr has address 0, the null pointer the kernels test for. CudaModule turns
    // each DeviceBuffer into its device address.
    Object[] driverArgs =
        LaunchArguments.convert(kernel, args, (buffer, name, index) -> buffer, new CUdeviceptr());
    module.launch(kernel, grid, block, dynamicSharedBytes, driverArgs);
    // The launch passed the buffers' addresses only; see DeviceRuntime.keepReachable.
    Reference.reachabilityFence(args);
    counters.countLaunch(kernel);
  }

  @Override
  public void synchronize() {
    context.synchronize();
    counters.countSynchronize();
  }

  /** Does nothing: the context is shared and stays open until {@link CudaContext#close()}. */
  @Override
  public void close() {}

  @Override
  public String toString() {
    return name();
  }
}
