package dev.kiln.core.backend.cuda;

/**
 * A block of device memory that a {@link CachingAllocator} handed out.
 *
 * <p>The address is a raw 64-bit value: a GPU virtual address on a CUDA device, or a host address
 * on the {@code emulated} device. {@link CudaModule#launch} passes it to a kernel as a pointer
 * argument.
 *
 * <p>The cache hands a freed block to the next request of its size, so an address alone cannot tell
 * a buffer from the one that took its block over. The allocation number can: the allocator numbers
 * every allocation it hands out, and {@link CachingAllocator#requireInUse} rejects a buffer whose
 * block now belongs to a later allocation.
 *
 * @param address the start address of the block
 * @param bytes the usable size in bytes, which is at least the requested size because the allocator
 *     rounds requests up to a size class
 * @param allocation the allocator's number of the allocation that this buffer, or the block it is a
 *     slice of, came from, or 0 for a buffer made outside an allocator, which no check compares
 */
public record DeviceBuffer(long address, long bytes, long allocation) {

  public DeviceBuffer {
    if (address == 0) {
      throw new IllegalArgumentException("device buffer address must not be 0 (null)");
    }
    if (bytes < 0) {
      throw new IllegalArgumentException("device buffer size must be 0 or more, got " + bytes);
    }
  }

  /** Returns a buffer that no allocator handed out, such as a test's fake address. */
  public DeviceBuffer(long address, long bytes) {
    this(address, bytes, 0);
  }

  /** Returns the address formatted as hexadecimal, for messages. */
  public String hexAddress() {
    return "0x" + Long.toHexString(address);
  }
}
