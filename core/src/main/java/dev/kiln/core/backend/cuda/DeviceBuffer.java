package dev.kiln.core.backend.cuda;

/**
 * A block of device memory that a {@link CachingAllocator} handed out.
 *
 * <p>The address is a raw 64-bit value: a GPU virtual address on a CUDA device, or a host address
 * on the {@code emulated} device. {@link CudaContext#launch} passes it to a kernel as a pointer
 * argument.
 *
 * @param address the start address of the block
 * @param bytes the usable size in bytes, which is at least the requested size because the allocator
 *     rounds requests up to a size class
 */
public record DeviceBuffer(long address, long bytes) {

  public DeviceBuffer {
    if (address == 0) {
      throw new IllegalArgumentException("device buffer address must not be 0 (null)");
    }
    if (bytes < 0) {
      throw new IllegalArgumentException("device buffer size must be 0 or more, got " + bytes);
    }
  }

  /** Returns the address formatted as hexadecimal, for messages. */
  public String hexAddress() {
    return "0x" + Long.toHexString(address);
  }
}
