package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.HostMemory;
import dev.kiln.kernels.Dim3;
import dev.kiln.kernels.EmulatedKernels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;

/**
 * The {@link DeviceRuntime} of the {@code emulated} device: kiln's kernels compiled for the CPU
 * ({@code libkiln_emu.so}, see {@link EmulatedKernels}), working on native host memory that a
 * {@link HostMemory} hands out.
 *
 * <p>"Device" addresses here are ordinary host addresses, so a copy is a {@code memcpy} between a
 * Java array and a {@link MemorySegment}, and a launch passes each buffer to the kernel as the
 * segment that {@link HostMemory#segment(DeviceBuffer)} returns for it. Every launch runs to
 * completion before it returns, so {@link #synchronize()} has nothing to wait for.
 *
 * <p>The emulator runs each CUDA thread as a real thread and the blocks one after another. That
 * makes it far slower than the CPU backend, but faithful to the kernels' use of barriers and warp
 * shuffles, which is what it is for: testing the kernels and their launchers without a GPU.
 */
public final class EmulatedRuntime implements DeviceRuntime {

  /**
   * The multiprocessors that the emulated device reports: an H100 SXM's or H200's 132, so that the
   * launchers make the same choices of kernel and grid here as on the GPU that kiln is tuned for,
   * and the tests exercise those choices.
   */
  public static final int MULTIPROCESSORS = 132;

  /** Capacity of {@link #create()}: the most bytes that may be allocated at once. */
  public static final long DEFAULT_CAPACITY_BYTES = 2L << 30;

  private final HostMemory memory;
  private final CachingAllocator allocator;
  private final EmulatedKernels kernels;
  private final ConstantInts constants = new ConstantInts(this);
  private final DeviceCounters counters = new DeviceCounters();

  /** Flag set by {@link #close()}, after which launches and copies are rejected. */
  private volatile boolean closed;

  private EmulatedRuntime(long capacityBytes) {
    this.kernels = EmulatedKernels.load();
    this.memory = new HostMemory(capacityBytes);
    this.allocator = new CachingAllocator(memory);
  }

  /**
   * Creates an emulated device with {@link #DEFAULT_CAPACITY_BYTES} of memory.
   *
   * @throws IllegalStateException if the emulation library cannot be loaded, with a message that
   *     explains how to build it
   */
  public static EmulatedRuntime create() {
    return new EmulatedRuntime(DEFAULT_CAPACITY_BYTES);
  }

  /**
   * Creates an emulated device that runs out of memory, as a GPU would, once {@code capacityBytes}
   * are allocated.
   */
  public static EmulatedRuntime create(long capacityBytes) {
    return new EmulatedRuntime(capacityBytes);
  }

  @Override
  public String name() {
    return memory.deviceName();
  }

  /** Returns {@link #MULTIPROCESSORS}. */
  @Override
  public int multiprocessors() {
    return MULTIPROCESSORS;
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
    return allocator;
  }

  @Override
  public void copyToDevice(float[] src, int srcIndex, DeviceBuffer dst, long dstIndex, int count) {
    requireOpen();
    String target = "the target of a copy to the device";
    CopyRanges.requireArrayRange("the source of a copy to the device", src.length, srcIndex, count);
    allocator.requireInUse(dst, CopyRanges.describe(target, count, dstIndex));
    CopyRanges.requireDeviceRange(target, dst, dstIndex, count);
    MemorySegment.copy(
        src, srcIndex, memory.segment(dst), ValueLayout.JAVA_FLOAT, dstIndex * Float.BYTES, count);
    DeviceRuntime.keepReachable(dst);
    counters.countCopyToDevice((long) count * Float.BYTES);
  }

  @Override
  public void copyToHost(DeviceBuffer src, long srcIndex, float[] dst, int dstIndex, int count) {
    requireOpen();
    String source = "the source of a copy to the host";
    allocator.requireInUse(src, CopyRanges.describe(source, count, srcIndex));
    CopyRanges.requireDeviceRange(source, src, srcIndex, count);
    CopyRanges.requireArrayRange("the target of a copy to the host", dst.length, dstIndex, count);
    MemorySegment.copy(
        memory.segment(src), ValueLayout.JAVA_FLOAT, srcIndex * Float.BYTES, dst, dstIndex, count);
    DeviceRuntime.keepReachable(src);
    counters.countCopyToHost((long) count * Float.BYTES);
  }

  @Override
  public void copyWithinDevice(
      DeviceBuffer src, long srcIndex, DeviceBuffer dst, long dstIndex, long count) {
    requireOpen();
    String source = "the source of a copy within the device";
    String target = "the target of a copy within the device";
    allocator.requireInUse(src, CopyRanges.describe(source, count, srcIndex));
    allocator.requireInUse(dst, CopyRanges.describe(target, count, dstIndex));
    CopyRanges.requireDeviceRange(source, src, srcIndex, count);
    CopyRanges.requireDeviceRange(target, dst, dstIndex, count);
    MemorySegment.copy(
        memory.segment(src),
        srcIndex * Float.BYTES,
        memory.segment(dst),
        dstIndex * Float.BYTES,
        count * Float.BYTES);
    DeviceRuntime.keepReachable(src, dst);
    counters.countCopyWithinDevice(count * Float.BYTES);
  }

  /**
   * Launches a kernel of the emulation library and returns when it has finished. A bare {@code
   * null} argument is rejected, as {@link LaunchArguments} explains, because the kernel would
   * dereference it inside this process.
   */
  @Override
  public void launch(String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args) {
    requireOpen();
    Object[] segments = LaunchArguments.convert(kernel, args, this::segment, MemorySegment.NULL);
    kernels.launch(kernel, grid, block, dynamicSharedBytes, segments);
    // The kernel ran on the buffers' addresses only; see DeviceRuntime.keepReachable.
    Reference.reachabilityFence(args);
    counters.countLaunch(kernel);
  }

  /** Returns the memory of a buffer argument, after checking that it was not freed. */
  private MemorySegment segment(DeviceBuffer buffer, String kernel, int index) {
    allocator.requireInUse(buffer, "argument " + index + " of " + kernel);
    return memory.segment(buffer);
  }

  /**
   * Counts the call and returns: every emulated launch and copy has finished when its call returns,
   * so there is nothing to wait for. It is counted all the same, because on a GPU the same call
   * would stall the host.
   */
  @Override
  public void synchronize() {
    counters.countSynchronize();
  }

  /**
   * Gives the cached blocks back to the host. Blocks still in use stay allocated, and the allocator
   * logs a warning that counts them, which points at a launcher that forgot to free a temporary.
   */
  @Override
  public void close() {
    constants.clear();
    closed = true;
    allocator.close();
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the emulated runtime is closed: create a new one");
    }
  }

  @Override
  public String toString() {
    return name();
  }
}
