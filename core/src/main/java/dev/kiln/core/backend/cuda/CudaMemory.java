package dev.kiln.core.backend.cuda;

import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Raw memory of one CUDA device: {@code cuMemAlloc}, {@code cuMemFree} and {@code cuMemGetInfo} in
 * the device's primary context. A {@link CachingAllocator} sits on top, so these calls are rare.
 */
public final class CudaMemory implements DeviceMemory {

  private final CudaContext context;

  /**
   * Creates the raw memory of the device that {@code context} belongs to.
   *
   * @param context the device's context, made current on the calling thread before each call
   */
  public CudaMemory(CudaContext context) {
    this.context = context;
  }

  @Override
  public long allocate(long bytes) {
    context.makeCurrent();
    RawDevicePointer pointer = new RawDevicePointer();
    int result = JCudaDriver.cuMemAlloc(pointer, bytes);
    if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
      return 0;
    }
    CudaException.check(result, "cuMemAlloc", "bytes=" + bytes + ", device=" + deviceName());
    return pointer.address();
  }

  /**
   * Frees a block after the device's stream has finished. The driver documents only that {@code
   * cuMemFree} may synchronize, not that it waits for the kernels queued on kiln's stream, and one
   * of them may still read the block. Frees are rare, because the caching allocator keeps blocks,
   * so the wait costs little.
   */
  @Override
  public void free(long address, long bytes) {
    // The context's lock keeps CudaContext.close() from destroying the stream or giving back the
    // context between the check and the free.
    synchronized (context) {
      if (context.isReleased()) {
        // A tensor outlived its closed context. CudaContext.isReleased explains why its block is
        // left alone.
        return;
      }
      context.synchronize();
      CudaException.check(
          JCudaDriver.cuMemFree(new RawDevicePointer(address)),
          "cuMemFree",
          String.format("address=0x%x, bytes=%d, device=%s", address, bytes, deviceName()));
    }
  }

  @Override
  public MemoryInfo memoryInfo() {
    context.makeCurrent();
    long[] free = new long[1];
    long[] total = new long[1];
    CudaException.check(
        JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo", "device=" + deviceName());
    return new MemoryInfo(free[0], total[0]);
  }

  @Override
  public String deviceName() {
    return "cuda:" + context.deviceIndex();
  }
}
