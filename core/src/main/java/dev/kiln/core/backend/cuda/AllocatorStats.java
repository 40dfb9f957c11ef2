package dev.kiln.core.backend.cuda;

/**
 * A snapshot of a {@link CachingAllocator}'s counters.
 *
 * @param bytesInUse bytes of the blocks handed out and not yet freed, counted at their rounded size
 *     class
 * @param bytesCached bytes of the freed blocks that the allocator keeps for reuse
 * @param peakBytesInUse the largest {@code bytesInUse} since creation or the last {@link
 *     CachingAllocator#resetPeak()}
 * @param allocations number of {@code allocate} calls that succeeded
 * @param cacheHits number of those calls served from a cached block without asking the device
 * @param deviceAllocations number of raw allocations from the device
 * @param deviceFrees number of raw frees to the device
 */
public record AllocatorStats(
    long bytesInUse,
    long bytesCached,
    long peakBytesInUse,
    long allocations,
    long cacheHits,
    long deviceAllocations,
    long deviceFrees) {

  /** Returns the bytes that this allocator has allocated on the device: in use plus cached. */
  public long bytesReserved() {
    return bytesInUse + bytesCached;
  }
}
