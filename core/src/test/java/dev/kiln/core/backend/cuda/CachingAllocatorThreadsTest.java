package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Tests the caching allocator under allocation and free from several threads at once. */
class CachingAllocatorThreadsTest {

  private static final int THREADS = 4;
  private static final int ROUNDS = 2000;

  @Test
  void fourThreadsKeepCountersConsistent() throws Exception {
    FakeDeviceMemory memory = new FakeDeviceMemory(1L << 30);
    CachingAllocator allocator = new CachingAllocator(memory);
    // Every live address must belong to one thread only.
    Set<Long> liveAddresses = ConcurrentHashMap.newKeySet();
    CyclicBarrier start = new CyclicBarrier(THREADS);

    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    List<Future<Integer>> results = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      long seed = 17 + t;
      results.add(
          pool.submit(
              () -> {
                Random random = new Random(seed);
                List<DeviceBuffer> owned = new ArrayList<>();
                int duplicates = 0;
                start.await();
                for (int round = 0; round < ROUNDS; round++) {
                  if (owned.isEmpty() || random.nextBoolean()) {
                    long size = 1L << (6 + random.nextInt(16));
                    DeviceBuffer block = allocator.allocate(size);
                    if (!liveAddresses.add(block.address())) {
                      duplicates++;
                    }
                    owned.add(block);
                  } else {
                    DeviceBuffer block = owned.remove(random.nextInt(owned.size()));
                    liveAddresses.remove(block.address());
                    allocator.free(block);
                  }
                }
                for (DeviceBuffer block : owned) {
                  liveAddresses.remove(block.address());
                  allocator.free(block);
                }
                return duplicates;
              }));
    }
    pool.shutdown();
    assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS), "threads did not finish in 60 s");

    for (Future<Integer> result : results) {
      assertEquals(0, result.get(), "a block was handed to two owners at once");
    }
    AllocatorStats stats = allocator.stats();
    assertEquals(0, stats.bytesInUse());
    assertEquals(memory.usedBytes(), stats.bytesCached(), "cached bytes must match the device");
    assertEquals(stats.deviceAllocations(), memory.liveBlocks(), "every device block is cached");
    assertTrue(stats.cacheHits() > 0, "threads should reuse each other's freed blocks");

    assertTrue(liveAddresses.isEmpty(), "blocks left live: " + liveAddresses.size());

    allocator.emptyCache();
    assertEquals(0, memory.usedBytes());
  }
}
