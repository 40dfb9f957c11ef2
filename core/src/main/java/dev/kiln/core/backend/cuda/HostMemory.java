package dev.kiln.core.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.TreeMap;

/**
 * Device memory for the {@code emulated} device: native host memory that the emulated kernels,
 * compiled for the CPU, read and write through {@code java.lang.foreign}.
 *
 * <p>Each block comes from its own shared {@link Arena}, so {@link #free} releases it at once and
 * any thread may use it. Blocks are aligned to {@value #ALIGNMENT} bytes, the alignment that {@code
 * cuMemAlloc} guarantees, so that code which relies on it behaves the same on both devices.
 *
 * <p>A capacity makes the emulated device run out of memory the way a GPU does: {@link #allocate}
 * returns 0 once the blocks would exceed it.
 */
public final class HostMemory implements DeviceMemory {

  /** Alignment of every block, in bytes. */
  public static final long ALIGNMENT = 256;

  private final long capacityBytes;

  /** Live blocks by start address, sorted so that an address inside a block finds its block. */
  private final TreeMap<Long, Block> blocks = new TreeMap<>();

  private long usedBytes;

  private record Block(Arena arena, MemorySegment segment) {}

  /**
   * Creates host memory with a capacity.
   *
   * @param capacityBytes the most bytes that may be allocated at once, at least 1
   */
  public HostMemory(long capacityBytes) {
    if (capacityBytes < 1) {
      throw new IllegalArgumentException(
          "host memory capacity must be at least 1 byte, got " + capacityBytes);
    }
    this.capacityBytes = capacityBytes;
  }

  @Override
  public synchronized long allocate(long bytes) {
    if (bytes < 1) {
      throw new IllegalArgumentException("allocation size must be at least 1 byte, got " + bytes);
    }
    if (bytes > capacityBytes - usedBytes) {
      return 0;
    }

    Arena arena = Arena.ofShared();
    MemorySegment segment;
    try {
      segment = arena.allocate(bytes, ALIGNMENT);
    } catch (OutOfMemoryError e) {
      // malloc itself failed: report it as a full device, like cuMemAlloc does.
      arena.close();
      return 0;
    }
    blocks.put(segment.address(), new Block(arena, segment));
    usedBytes += bytes;
    return segment.address();
  }

  @Override
  public synchronized void free(long address, long bytes) {
    Block block = blocks.get(address);
    if (block == null || block.segment().byteSize() != bytes) {
      throw new IllegalStateException(
          String.format(
              "cannot free host block 0x%x of %d bytes: no live block starts there with that size",
              address, bytes));
    }
    blocks.remove(address);
    usedBytes -= bytes;
    block.arena().close();
  }

  @Override
  public synchronized MemoryInfo memoryInfo() {
    return new MemoryInfo(capacityBytes - usedBytes, capacityBytes);
  }

  @Override
  public String deviceName() {
    return "emulated";
  }

  /**
   * Returns the memory of a buffer as a segment, for the emulated kernels and for copies.
   *
   * @param buffer a live buffer whose address came from this memory
   * @throws IllegalArgumentException if the buffer does not lie inside a live block
   */
  public MemorySegment segment(DeviceBuffer buffer) {
    return segment(buffer.address(), buffer.bytes());
  }

  /**
   * Returns {@code bytes} bytes starting at {@code address} as a segment. The range may start
   * inside a block, for example at an offset into a tensor's storage.
   *
   * @throws IllegalArgumentException if the range does not lie inside one live block
   */
  public synchronized MemorySegment segment(long address, long bytes) {
    Map.Entry<Long, Block> entry = blocks.floorEntry(address);
    if (entry != null) {
      MemorySegment block = entry.getValue().segment();
      long offset = address - entry.getKey();
      if (bytes >= 0 && offset + bytes <= block.byteSize()) {
        return block.asSlice(offset, bytes);
      }
    }
    throw new IllegalArgumentException(
        String.format(
            "no live emulated block holds the %d bytes at 0x%x: the buffer was freed or the"
                + " range runs past its end",
            bytes, address));
  }
}
