package dev.kiln.core.backend.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A caching allocator for device memory: freed blocks are kept and handed out again, so that once
 * the training steps repeat the same requests (from the third step in {@code DeviceMemoryTest}) no
 * request reaches the driver.
 *
 * <h2>Why cache</h2>
 *
 * <p>{@code cuMemAlloc} and {@code cuMemFree} are slow compared with a kernel launch: they update
 * the GPU's page tables, and a free must also wait until no queued kernel can still use the block
 * ({@link CudaMemory#free} waits for the stream). A training step allocates and frees hundreds of
 * activation and gradient buffers, so calling the driver for each would serialize the CPU with the
 * GPU and spend more time in the driver than in the kernels. A training loop requests the same
 * sizes in every step, so a block freed in step {@code n} serves the same request in step {@code n
 * + 1}.
 *
 * <h2>Size classes</h2>
 *
 * <p>Each request is rounded up to a size class, and a cached block serves only requests of its own
 * class:
 *
 * <ul>
 *   <li>Requests up to {@value #SMALL_LIMIT} bytes (1 MiB) round up to a multiple of {@value
 *       #SMALL_GRANULE} bytes. This is a size, not an alignment: every block comes whole from the
 *       device, whose allocations are aligned to at least 256 bytes, which covers the 16-byte loads
 *       of vectorized kernels.
 *   <li>Larger requests round up to a multiple of {@value #LARGE_GRANULE} bytes (2 MiB).
 * </ul>
 *
 * <p>Rounding lets requests of almost the same size share blocks: a batch whose last sample makes a
 * tensor a few bytes shorter still reuses the blocks of the full batch. The coarse granule for
 * large blocks bounds how many classes exist, at the cost of waste inside a block. A small block
 * wastes at most 511 bytes. A large one wastes at most 2 MiB minus one byte, which is under 2% of a
 * 100 MiB block but nearly half of a block just over 1 MiB.
 *
 * <h2>Fragmentation</h2>
 *
 * <p>A cached block is never split or merged, so memory cached in one class cannot serve another.
 * When the sizes change, for example at a new input resolution or during evaluation with another
 * batch size, the old classes stay cached while new blocks are allocated. The device can then run
 * out of memory although most of it is free inside kiln's cache. The allocator handles this case:
 * when the device reports no room, it returns every cached block with {@link #emptyCache()} and
 * tries once more before it throws {@link DeviceOutOfMemoryException}.
 *
 * <h2>Threads</h2>
 *
 * <p>One {@link ReentrantLock} guards all state, and it is held across the driver calls too. A
 * finer scheme, such as a lock per size class, would let threads allocate at the same time, but
 * after warm-up each call is a map lookup of well under a microsecond, so the lock is never the
 * bottleneck. Holding it across the driver calls keeps the out-of-memory retry simple, because no
 * other thread can refill the cache between {@code emptyCache()} and the retry.
 *
 * <h2>Why a freed block can be reused at once</h2>
 *
 * <p>A kernel that reads a block may still be queued on the GPU when the block is freed, yet the
 * allocator hands the block out again without waiting. That is safe because all work of the device
 * goes to one stream, which runs it in the order it was issued. The caller frees a block only after
 * it issued the work that uses it, so a later kernel that receives the same block runs after that
 * work. A second stream would break this argument.
 */
public final class CachingAllocator implements AutoCloseable {

  /** Largest request, in bytes, that is rounded to the small granule. */
  public static final long SMALL_LIMIT = 1L << 20;

  /** Granule of small size classes, in bytes. */
  public static final long SMALL_GRANULE = 512;

  /** Granule of large size classes, in bytes. */
  public static final long LARGE_GRANULE = 2L << 20;

  private static final Logger LOG = LoggerFactory.getLogger(CachingAllocator.class);

  private final DeviceMemory memory;
  private final ReentrantLock lock = new ReentrantLock();

  /** Cached free blocks: size class to the addresses of that class, the newest first. */
  private final Map<Long, ArrayDeque<Long>> cachedBySize = new HashMap<>();

  /** A block handed out: its size class and the number of the allocation that holds it. */
  private record Block(long size, long allocation) {}

  /** Blocks handed out, by address. */
  private final TreeMap<Long, Block> inUse = new TreeMap<>();

  /** Flag set by {@link #close()}, after which allocations are rejected. */
  private boolean closed;

  /**
   * Maximum number of reclaims for one allocation. Each runs a full garbage collection, so a device
   * that stays full costs a few collections before its out-of-memory error, not an endless loop.
   */
  static final int RECLAIM_ATTEMPTS = 4;

  /** Function that {@link #allocate} calls when the device is full (see {@link #setReclaimer}). */
  private volatile BooleanSupplier reclaimer = () -> false;

  private long bytesInUse;
  private long bytesCached;
  private long peakBytesInUse;
  private long allocations;
  private long cacheHits;
  private long deviceAllocations;
  private long deviceFrees;

  /**
   * Creates an allocator over the raw memory of one device.
   *
   * @param memory the device memory that blocks come from and return to
   */
  public CachingAllocator(DeviceMemory memory) {
    this.memory = memory;
  }

  /** Returns the raw device memory under this allocator. */
  public DeviceMemory memory() {
    return memory;
  }

  /**
   * Rounds a request up to its size class.
   *
   * @param bytes the requested size, 0 or more
   * @return the size class in bytes. A request of 0 bytes gets the smallest class, so that every
   *     block has a distinct address
   */
  public static long sizeClass(long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("allocation size must be 0 or more, got " + bytes);
    }
    if (bytes <= SMALL_LIMIT) {
      return Math.max(SMALL_GRANULE, roundUp(bytes, SMALL_GRANULE));
    }
    return roundUp(bytes, LARGE_GRANULE);
  }

  private static long roundUp(long bytes, long granule) {
    long rounded = (bytes + granule - 1) / granule * granule;
    if (rounded < bytes) {
      throw new IllegalArgumentException("allocation size " + bytes + " bytes is too large");
    }
    return rounded;
  }

  /**
   * Allocates a block of at least {@code bytes} bytes, from the cache where one of the same size
   * class is free, else from the device.
   *
   * @param bytes the requested size, 0 or more
   * @return the block, whose {@link DeviceBuffer#bytes()} is the rounded size class
   * @throws DeviceOutOfMemoryException if the device has no room even after the cache was emptied
   *     and the {@linkplain #setReclaimer reclaimer} gave nothing more back
   */
  public DeviceBuffer allocate(long bytes) {
    try {
      return allocateOnce(bytes);
    } catch (DeviceOutOfMemoryException full) {
      // Outside the lock: the reclaimer may wait for other threads that free blocks. Those threads
      // may also take what one reclaim gave back, or it may have been too little, so each reclaim
      // that gave something back earns another try, up to RECLAIM_ATTEMPTS.
      DeviceOutOfMemoryException last = full;
      for (int attempt = 0; attempt < RECLAIM_ATTEMPTS && reclaimer.getAsBoolean(); attempt++) {
        try {
          return allocateOnce(bytes);
        } catch (DeviceOutOfMemoryException again) {
          last = again;
        }
      }
      throw last;
    }
  }

  /**
   * Sets what to try when the device is full even after the cache was emptied: a function that
   * makes owners give blocks back and returns whether any came back, after which the allocation is
   * tried again, up to {@value #RECLAIM_ATTEMPTS} times while blocks keep coming back. Tensors are
   * such owners, because a tensor's block returns only when the garbage collector finds the tensor
   * unreachable (see {@code DeviceStorage}). By default nothing is tried.
   */
  public void setReclaimer(BooleanSupplier reclaimer) {
    this.reclaimer = reclaimer;
  }

  private DeviceBuffer allocateOnce(long bytes) {
    long size = sizeClass(bytes);
    lock.lock();
    try {
      if (closed) {
        throw new IllegalStateException(
            "the allocator of " + memory.deviceName() + " is closed: open a new device runtime");
      }
      long address;
      ArrayDeque<Long> cached = cachedBySize.get(size);
      if (cached != null && !cached.isEmpty()) {
        address = cached.pop();
        bytesCached -= size;
        cacheHits++;
      } else {
        address = allocateFromDevice(bytes, size);
      }

      allocations++;
      inUse.put(address, new Block(size, allocations));
      bytesInUse += size;
      peakBytesInUse = Math.max(peakBytesInUse, bytesInUse);
      return new DeviceBuffer(address, size, allocations);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Allocates a block from the device, emptying the cache and retrying once when it has no room.
   */
  private long allocateFromDevice(long requested, long size) {
    long address = memory.allocate(size);
    if (address == 0 && bytesCached > 0) {
      long cachedBefore = bytesCached;
      LOG.debug(
          "{} has no room for {}: returning {} of cached blocks and retrying",
          memory.deviceName(),
          ByteSizes.format(size),
          ByteSizes.format(cachedBefore));
      emptyCache();
      address = memory.allocate(size);
      if (address == 0) {
        throw outOfMemory(requested, size, cachedBefore);
      }
    } else if (address == 0) {
      throw outOfMemory(requested, size, 0);
    }
    deviceAllocations++;
    return address;
  }

  private DeviceOutOfMemoryException outOfMemory(long requested, long size, long cachedReleased) {
    String deviceState;
    try {
      DeviceMemory.MemoryInfo info = memory.memoryInfo();
      deviceState =
          "The device has "
              + ByteSizes.format(info.freeBytes())
              + " free of "
              + ByteSizes.format(info.totalBytes())
              + " total";
    } catch (RuntimeException e) {
      deviceState = "The device's free memory is unknown (" + e.getMessage() + ")";
    }
    String cache =
        cachedReleased > 0
            ? "had "
                + ByteSizes.format(cachedReleased)
                + " cached, which it released before retrying"
            : "had nothing cached to release";
    String situation =
        String.format(
            "out of memory on %s: could not allocate %s (%d bytes requested, rounded to %d)."
                + " %s. kiln has %s in use and %s.",
            memory.deviceName(),
            ByteSizes.format(size),
            requested,
            size,
            deviceState,
            ByteSizes.format(bytesInUse),
            cache);
    String advice =
        "Use a smaller batch size, drop references to tensors that are no longer needed, or call"
            + " emptyCache() so that other processes on the device get the cached memory back.";
    return new DeviceOutOfMemoryException(situation, advice, requested);
  }

  /**
   * Returns a block to the cache, where the next request of its size class finds it.
   *
   * @param buffer a block that this allocator handed out and that was not freed since
   * @throws IllegalStateException if the block is unknown here, for example freed twice
   */
  public void free(DeviceBuffer buffer) {
    lock.lock();
    try {
      Block block = inUse.get(buffer.address());
      if (block == null || isReissued(buffer, block)) {
        throw new IllegalStateException(
            "cannot free block "
                + buffer.hexAddress()
                + " on "
                + memory.deviceName()
                + ": this allocator did not hand it out or it was already freed");
      }
      long size = block.size();
      if (size != buffer.bytes()) {
        throw new IllegalStateException(
            String.format(
                "cannot free block %s on %s: it has %d bytes but the buffer records %d."
                    + " Pass the DeviceBuffer that allocate() returned",
                buffer.hexAddress(), memory.deviceName(), size, buffer.bytes()));
      }

      inUse.remove(buffer.address());
      bytesInUse -= size;
      cachedBySize.computeIfAbsent(size, unused -> new ArrayDeque<>()).push(buffer.address());
      bytesCached += size;
      if (closed) {
        // A closed allocator keeps no cache, so a block freed late goes straight back.
        emptyCache();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Checks that {@code buffer}, a block from {@link #allocate} or a slice of one, lies inside a
   * block that is in use, and so has not been freed. The emulated device calls it for every kernel
   * argument and copy, because a freed block may already serve another tensor and a kernel that
   * writes it would corrupt that tensor without any error.
   *
   * @param role the role of the buffer, for the message, such as "argument 2 of kiln_conv_im2col"
   * @throws IllegalStateException if no block in use contains the whole buffer
   */
  public void requireInUse(DeviceBuffer buffer, String role) {
    lock.lock();
    try {
      Map.Entry<Long, Block> block = inUse.floorEntry(buffer.address());
      boolean inside =
          block != null
              && buffer.address() - block.getKey() + buffer.bytes() <= block.getValue().size()
              && !isReissued(buffer, block.getValue());
      if (!inside) {
        throw new IllegalStateException(
            role
                + " is the buffer at "
                + buffer.hexAddress()
                + " of "
                + buffer.bytes()
                + " bytes on "
                + memory.deviceName()
                + ", which is not inside a block in use: it was freed (its block may serve"
                + " another buffer since), or it reaches past its block. Keep a buffer allocated"
                + " until the last kernel or copy that uses it");
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Returns whether {@code block} now belongs to a later allocation than the one {@code buffer}
   * came from, so that the buffer's own block was freed and handed out again.
   */
  private static boolean isReissued(DeviceBuffer buffer, Block block) {
    return buffer.allocation() != 0 && buffer.allocation() != block.allocation();
  }

  /**
   * Returns every cached block to the device. Blocks in use are not touched.
   *
   * <p>Call it to give memory back to other processes, or before measuring the device's free
   * memory. The next requests are slower, because they reach the driver again.
   */
  public void emptyCache() {
    lock.lock();
    try {
      for (Map.Entry<Long, ArrayDeque<Long>> entry : cachedBySize.entrySet()) {
        long size = entry.getKey();
        ArrayDeque<Long> addresses = entry.getValue();
        // Each address leaves the cache before the driver call, so a failing free leaves the
        // counters matching the blocks that are still cached.
        while (!addresses.isEmpty()) {
          long address = addresses.pop();
          bytesCached -= size;
          memory.free(address, size);
          deviceFrees++;
        }
      }
      cachedBySize.clear();
    } finally {
      lock.unlock();
    }
  }

  /** Returns a snapshot of the counters. */
  public AllocatorStats stats() {
    lock.lock();
    try {
      return new AllocatorStats(
          bytesInUse,
          bytesCached,
          peakBytesInUse,
          allocations,
          cacheHits,
          deviceAllocations,
          deviceFrees);
    } finally {
      lock.unlock();
    }
  }

  /** Sets the peak to the bytes in use now, so that the next phase measures its own peak. */
  public void resetPeak() {
    lock.lock();
    try {
      peakBytesInUse = bytesInUse;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Returns the cached blocks to the device. Blocks still in use are left allocated, because a
   * kernel may still read them, and a warning names how many leaked.
   */
  @Override
  public void close() {
    lock.lock();
    try {
      closed = true;
      emptyCache();
      if (!inUse.isEmpty()) {
        LOG.warn(
            "closing the allocator of {} with {} blocks ({}) still in use: they stay allocated"
                + " until the process ends. Before closing the device, run temporary tensors in a"
                + " MemoryScope and drop the others, because a block returns only when its scope"
                + " closes or the garbage collector finds its tensors unreachable",
            memory.deviceName(),
            inUse.size(),
            ByteSizes.format(bytesInUse));
      }
    } finally {
      lock.unlock();
    }
  }
}
