package dev.kiln.core.backend.cuda;

/**
 * Raw memory of one device: the three calls that a {@link CachingAllocator} builds on.
 *
 * <p>Implementations are {@link CudaMemory} ({@code cuMemAlloc}, {@code cuMemFree}, {@code
 * cuMemGetInfo}), {@link HostMemory} for the {@code emulated} device, and a fake with a fixed
 * capacity in the tests. Addresses are plain 64-bit values, so the allocator treats a GPU address
 * and a host address alike and never dereferences either.
 *
 * <p>Implementations must be safe to call from several threads, although the caching allocator
 * calls them under its own lock.
 */
public interface DeviceMemory {

  /**
   * Free and total bytes of a device, as the driver reports them.
   *
   * @param freeBytes bytes that a new allocation could still take
   * @param totalBytes bytes of memory on the device
   */
  record MemoryInfo(long freeBytes, long totalBytes) {}

  /**
   * Allocates {@code bytes} bytes and returns the start address.
   *
   * @param bytes the size, at least 1
   * @return the address, aligned to at least 256 bytes, or 0 when the device has no room left
   * @throws RuntimeException for any failure other than lack of memory, such as a lost context
   */
  long allocate(long bytes);

  /**
   * Returns a block to the device.
   *
   * @param address an address that {@link #allocate} returned and that was not freed since
   * @param bytes the size that was passed to {@link #allocate}
   */
  void free(long address, long bytes);

  /** Returns the device's free and total memory at this moment. */
  MemoryInfo memoryInfo();

  /** Returns the device's name for messages, such as {@code cuda:0} or {@code emulated}. */
  String deviceName();
}
