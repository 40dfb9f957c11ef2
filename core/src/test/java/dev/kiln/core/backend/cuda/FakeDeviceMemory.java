package dev.kiln.core.backend.cuda;

import java.util.HashMap;
import java.util.Map;

/**
 * Device memory that only does the bookkeeping: it hands out made-up addresses up to a capacity and
 * counts the calls, so the allocator's tests run without a GPU and can fill the "device".
 */
final class FakeDeviceMemory implements DeviceMemory {

  private final long capacityBytes;
  private final Map<Long, Long> live = new HashMap<>();
  private long nextAddress = 0x7f00_0000_0000L;
  private long usedBytes;
  private int allocateCalls;
  private int freeCalls;

  FakeDeviceMemory(long capacityBytes) {
    this.capacityBytes = capacityBytes;
  }

  @Override
  public synchronized long allocate(long bytes) {
    allocateCalls++;
    if (bytes > capacityBytes - usedBytes) {
      return 0;
    }
    long address = nextAddress;
    // Leaves a gap after each block and keeps the 256-byte alignment of cuMemAlloc.
    nextAddress += (bytes + 255) / 256 * 256 + 256;
    live.put(address, bytes);
    usedBytes += bytes;
    return address;
  }

  @Override
  public synchronized void free(long address, long bytes) {
    freeCalls++;
    Long size = live.remove(address);
    if (size == null || size != bytes) {
      throw new IllegalStateException(
          String.format(
              "fake free of 0x%x (%d bytes) does not match a live block", address, bytes));
    }
    usedBytes -= bytes;
  }

  @Override
  public synchronized MemoryInfo memoryInfo() {
    return new MemoryInfo(capacityBytes - usedBytes, capacityBytes);
  }

  @Override
  public String deviceName() {
    return "fake:0";
  }

  synchronized long usedBytes() {
    return usedBytes;
  }

  synchronized int liveBlocks() {
    return live.size();
  }

  synchronized int allocateCalls() {
    return allocateCalls;
  }

  synchronized int freeCalls() {
    return freeCalls;
  }
}
