package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Tests the caching allocator on fake device memory: classes, reuse, statistics, out of memory. */
class CachingAllocatorTest {

  private static final long MIB = 1L << 20;

  @Test
  void sizeClassRoundsSmallRequestsTo512Bytes() {
    assertEquals(512, CachingAllocator.sizeClass(0));
    assertEquals(512, CachingAllocator.sizeClass(1));
    assertEquals(512, CachingAllocator.sizeClass(512));
    assertEquals(1024, CachingAllocator.sizeClass(513));
    assertEquals(MIB, CachingAllocator.sizeClass(MIB));
  }

  @Test
  void sizeClassRoundsLargeRequestsTo2MiB() {
    assertEquals(2 * MIB, CachingAllocator.sizeClass(MIB + 1));
    assertEquals(4 * MIB, CachingAllocator.sizeClass(2 * MIB + 1));
    assertEquals(100 * MIB, CachingAllocator.sizeClass(99 * MIB + 5));
  }

  @Test
  void sizeClassRejectsNegativeSize() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CachingAllocator.sizeClass(-1));
    assertTrue(e.getMessage().contains("-1"), e.getMessage());
  }

  @Test
  void freedBlockIsReusedForSameClass() {
    FakeDeviceMemory memory = new FakeDeviceMemory(64 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);

    DeviceBuffer first = allocator.allocate(1000);
    allocator.free(first);
    DeviceBuffer second = allocator.allocate(900);

    assertEquals(first.address(), second.address(), "900 and 1000 bytes share the 1024 class");
    assertEquals(1024, second.bytes());
    assertEquals(1, memory.allocateCalls(), "the second request must not reach the device");
    assertEquals(1, allocator.stats().cacheHits());
  }

  @Test
  void freedBlockIsNotReusedForOtherClass() {
    FakeDeviceMemory memory = new FakeDeviceMemory(64 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);

    DeviceBuffer small = allocator.allocate(512);
    allocator.free(small);
    DeviceBuffer larger = allocator.allocate(2048);

    assertNotEquals(small.address(), larger.address());
    assertEquals(2, memory.allocateCalls());
    assertEquals(0, allocator.stats().cacheHits());
  }

  @Test
  void statsAfterSequence() {
    FakeDeviceMemory memory = new FakeDeviceMemory(64 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);

    DeviceBuffer a = allocator.allocate(100); // class 512
    DeviceBuffer b = allocator.allocate(3 * MIB); // class 4 MiB
    allocator.free(a);
    DeviceBuffer c = allocator.allocate(200); // hit: class 512
    allocator.free(b);

    AllocatorStats stats = allocator.stats();
    assertEquals(512, stats.bytesInUse());
    assertEquals(4 * MIB, stats.bytesCached());
    assertEquals(4 * MIB + 512, stats.peakBytesInUse());
    assertEquals(3, stats.allocations());
    assertEquals(1, stats.cacheHits());
    assertEquals(2, stats.deviceAllocations());
    assertEquals(0, stats.deviceFrees());
    assertEquals(4 * MIB + 512, stats.bytesReserved());
    assertEquals(
        4 * MIB + 512, memory.usedBytes(), "the device has allocated what is in use or cached");
    allocator.free(c);
  }

  @Test
  void peakKeepsMaximumUntilReset() {
    CachingAllocator allocator = new CachingAllocator(new FakeDeviceMemory(64 * MIB));

    DeviceBuffer a = allocator.allocate(MIB);
    DeviceBuffer b = allocator.allocate(MIB);
    allocator.free(a);
    allocator.free(b);
    assertEquals(2 * MIB, allocator.stats().peakBytesInUse());

    allocator.resetPeak();
    assertEquals(0, allocator.stats().peakBytesInUse());
    DeviceBuffer c = allocator.allocate(512);
    assertEquals(512, allocator.stats().peakBytesInUse());
    allocator.free(c);
  }

  @Test
  void emptyCacheReturnsUnusedBlocksOnly() {
    FakeDeviceMemory memory = new FakeDeviceMemory(64 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);

    DeviceBuffer stillInUse = allocator.allocate(5000);
    List<DeviceBuffer> freed = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      freed.add(allocator.allocate(3 * MIB));
    }
    freed.forEach(allocator::free);
    allocator.emptyCache();

    AllocatorStats stats = allocator.stats();
    assertEquals(0, stats.bytesCached());
    assertEquals(5120, stats.bytesInUse());
    assertEquals(3, stats.deviceFrees());
    assertEquals(1, memory.liveBlocks(), "only the block in use stays on the device");
    assertEquals(5120, memory.usedBytes());
    allocator.free(stillInUse);
  }

  @Test
  void freeTwiceIsRejected() {
    CachingAllocator allocator = new CachingAllocator(new FakeDeviceMemory(MIB));
    DeviceBuffer block = allocator.allocate(64);
    allocator.free(block);

    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> allocator.free(block));
    assertTrue(e.getMessage().contains(block.hexAddress()), e.getMessage());
    assertTrue(e.getMessage().contains("already freed"), e.getMessage());
  }

  @Test
  void outOfMemoryEmptiesCacheAndRetries() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    allocator.free(allocator.allocate(6 * MIB));

    // 6 MiB are cached, so 4 MiB fit only after the cache is returned.
    DeviceBuffer block = allocator.allocate(4 * MIB);

    AllocatorStats stats = allocator.stats();
    assertEquals(4 * MIB, block.bytes());
    assertEquals(0, stats.bytesCached());
    assertEquals(1, stats.deviceFrees());
    assertEquals(4 * MIB, memory.usedBytes());
  }

  @Test
  void outOfMemoryMessageNamesSizesAndAdvice() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    DeviceBuffer occupied = allocator.allocate(4 * MIB);
    allocator.free(allocator.allocate(2 * MIB));

    DeviceOutOfMemoryException e =
        assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(6 * MIB + 3));
    String message = e.getMessage();

    assertEquals(6 * MIB + 3, e.requestedBytes());
    assertTrue(message.contains("fake:0"), message);
    assertTrue(message.contains("6291459 bytes requested"), message);
    assertTrue(message.contains("rounded to 8388608"), message);
    assertTrue(message.contains("4.00 MiB free of 8.00 MiB total"), message);
    assertTrue(message.contains("4.00 MiB in use"), message);
    assertTrue(message.contains("had 2.00 MiB cached"), message);
    assertTrue(message.contains("smaller batch size"), message);
    assertTrue(message.contains("emptyCache()"), message);
    allocator.free(occupied);
  }

  @Test
  void outOfMemorySituationLeavesOutAdvice() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);

    DeviceOutOfMemoryException e =
        assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(16 * MIB));
    String situation = e.situation();

    assertTrue(situation.startsWith("out of memory on fake:0"), situation);
    assertTrue(situation.endsWith("had nothing cached to release."), situation);
    assertTrue(e.getMessage().startsWith(situation + " "), e.getMessage());
    assertTrue(e.getMessage().contains("emptyCache()"), e.getMessage());
  }

  @Test
  void fullDeviceAsksReclaimerOnce() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    DeviceBuffer held = allocator.allocate(6 * MIB);
    int[] calls = {0};
    // A reclaimer that gives nothing back leaves the out-of-memory error as it was.
    allocator.setReclaimer(
        () -> {
          calls[0]++;
          return false;
        });
    assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(4 * MIB));
    assertEquals(1, calls[0]);

    // One that frees the held block, as the cleaner of an unreachable tensor would, lets the
    // retry succeed.
    allocator.setReclaimer(
        () -> {
          calls[0]++;
          allocator.free(held);
          allocator.emptyCache();
          return true;
        });
    DeviceBuffer next = allocator.allocate(4 * MIB);
    assertEquals(2, calls[0]);
    assertEquals(4 * MIB, allocator.stats().bytesInUse());
    allocator.free(next);
  }

  @Test
  void reclaimRepeatsWhileBlocksReturn() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    DeviceBuffer small = allocator.allocate(MIB);
    DeviceBuffer large = allocator.allocate(6 * MIB);
    int[] calls = {0};
    // The first reclaim gives back too little for the request, as when another thread took the
    // rest; the second gives back enough.
    allocator.setReclaimer(
        () -> {
          calls[0]++;
          allocator.free(calls[0] == 1 ? small : large);
          allocator.emptyCache();
          return true;
        });

    DeviceBuffer next = allocator.allocate(4 * MIB);

    assertEquals(2, calls[0]);
    allocator.free(next);
  }

  @Test
  void reclaimAttemptsAreBounded() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    allocator.allocate(6 * MIB);
    int[] calls = {0};
    allocator.setReclaimer(
        () -> {
          calls[0]++;
          return true;
        });

    assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(4 * MIB));
    assertEquals(CachingAllocator.RECLAIM_ATTEMPTS, calls[0]);
  }

  @Test
  void staleBufferOfReissuedBlockRejected() {
    CachingAllocator allocator = new CachingAllocator(new FakeDeviceMemory(8 * MIB));
    DeviceBuffer stale = allocator.allocate(3000);
    allocator.free(stale);
    DeviceBuffer owner = allocator.allocate(3000);
    assertEquals(stale.address(), owner.address(), "the cache hands the freed block out again");

    IllegalStateException use =
        assertThrows(IllegalStateException.class, () -> allocator.requireInUse(stale, "a copy"));
    assertTrue(use.getMessage().contains("it was freed"), use.getMessage());
    DeviceBuffer staleSlice = new DeviceBuffer(stale.address() + 64, 128, stale.allocation());
    assertThrows(IllegalStateException.class, () -> allocator.requireInUse(staleSlice, "a slice"));
    assertThrows(IllegalStateException.class, () -> allocator.free(stale));

    allocator.requireInUse(owner, "the new owner");
    allocator.free(owner);
  }

  @Test
  void allocatorWorksAfterOutOfMemory() {
    FakeDeviceMemory memory = new FakeDeviceMemory(8 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    DeviceBuffer occupied = allocator.allocate(4 * MIB);
    assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(6 * MIB));

    AllocatorStats afterFailure = allocator.stats();
    assertEquals(4 * MIB, afterFailure.bytesInUse());
    assertEquals(0, afterFailure.bytesCached());
    assertEquals(1, afterFailure.allocations(), "the failed request is not counted");

    DeviceBuffer next = allocator.allocate(2 * MIB);
    assertEquals(6 * MIB, allocator.stats().bytesInUse());
    allocator.free(next);
    allocator.free(occupied);
    assertEquals(0, allocator.stats().bytesInUse());
  }

  @Test
  void trainingLikeLoopReturnsToBaseline() {
    FakeDeviceMemory memory = new FakeDeviceMemory(256 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    // Weights live across steps, while activations and gradients live within one step.
    DeviceBuffer weights = allocator.allocate(3 * MIB + 100);
    long baseline = allocator.stats().bytesInUse();
    long[] stepSizes = {4096, 64 * 1024, 2 * MIB + 7, 100, 3 * MIB + 100, 4096, 512 * 1024};

    long deviceAllocationsAfterFirstStep = 0;
    for (int step = 0; step < 20; step++) {
      List<DeviceBuffer> live = new ArrayList<>();
      for (long size : stepSizes) {
        live.add(allocator.allocate(size));
      }
      // Backward frees in reverse order of the forward pass.
      for (int i = live.size() - 1; i >= 0; i--) {
        allocator.free(live.get(i));
      }
      assertEquals(baseline, allocator.stats().bytesInUse(), "bytes in use after step " + step);
      if (step == 0) {
        deviceAllocationsAfterFirstStep = allocator.stats().deviceAllocations();
      }
    }

    AllocatorStats stats = allocator.stats();
    assertEquals(
        deviceAllocationsAfterFirstStep,
        stats.deviceAllocations(),
        "steps after the first must be served from the cache");
    assertEquals(20L * stepSizes.length + 1, stats.allocations());
    assertEquals(19L * stepSizes.length, stats.cacheHits());
    allocator.free(weights);
    assertEquals(0, allocator.stats().bytesInUse());
  }

  @Test
  void closeReturnsCacheToDevice() {
    FakeDeviceMemory memory = new FakeDeviceMemory(16 * MIB);
    CachingAllocator allocator = new CachingAllocator(memory);
    allocator.free(allocator.allocate(MIB));
    allocator.free(allocator.allocate(4 * MIB));

    allocator.close();

    assertEquals(0, memory.usedBytes());
    assertEquals(0, memory.liveBlocks());
  }
}
