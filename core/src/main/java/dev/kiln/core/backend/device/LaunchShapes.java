package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;

/**
 * The launch-shape rules that every device launcher shares, so that each kernel contract's "256
 * threads is a good default" is applied in one place.
 *
 * <p>A block of 256 threads (8 warps) keeps a streaming multiprocessor busy with a few resident
 * blocks and is a multiple of 32, which the kernels that reduce with warp shuffles require. For
 * small work the block shrinks to the smallest multiple of 32 that covers the item count. A GPU
 * then wastes fewer idle threads, and the emulator runs much faster, because it runs every CUDA
 * thread of a block on an OS thread of its own. Results stay the same up to rounding: a reduction
 * adds its partial sums in a tree whose shape follows the block size, so a different block size may
 * change the last bits.
 */
final class LaunchShapes {

  /** Threads per block for large work. */
  static final int BLOCK_THREADS = 256;

  /** Threads per warp. Reduction blocks are a multiple of this. */
  static final int WARP = 32;

  /**
   * Most blocks of a 1d grid from {@link #gridFor}. Every kernel launched that way walks its items
   * with a grid-stride loop, so a capped grid still covers them all, with several items per thread.
   * 1024 blocks of 256 threads are about one full wave of a large GPU: an H100 SXM or H200 has 132
   * multiprocessors, and each runs at most 2048 threads, so 8 such blocks. The cap matters most to
   * the emulator, which runs the blocks one after another at a fixed cost per block.
   */
  static final int MAX_GRID_BLOCKS = 1024;

  /**
   * CUDA's limit on gridDim.y and gridDim.z (gridDim.x may reach 2^31 - 1). A kernel that spreads
   * more rows than this over y must loop over them, as the matrix products do.
   */
  static final int MAX_GRID_Y = 65535;

  /**
   * CUDA's limit on gridDim.z, the same as on y. The matrix products put a batch of products, or
   * the slices of a sum, along z and loop over those past this limit.
   */
  static final int MAX_GRID_Z = 65535;

  private LaunchShapes() {}

  /** Returns a block size for {@code items} items: 256, or fewer warps for fewer items. */
  static int threadsFor(long items) {
    long warps = Math.max(1, (items + WARP - 1) / WARP);
    return (int) Math.min(BLOCK_THREADS, warps * WARP);
  }

  /** Returns a 1d block of {@link #threadsFor} threads. */
  static Dim3 blockFor(long items) {
    return Dim3.of(threadsFor(items));
  }

  /**
   * Returns a 1d grid that gives each of {@code items} items its own thread in blocks of {@code
   * block}, up to {@link #MAX_GRID_BLOCKS} blocks. Beyond that, the kernels' grid-stride loops give
   * each thread several items.
   */
  static Dim3 gridFor(long items, Dim3 block) {
    return Dim3.of(Math.min(MAX_GRID_BLOCKS, Dim3.blocksFor(items, block.x())));
  }

  /** Returns 1 for true and 0 for false, the kernels' int flags. */
  static int flag(boolean value) {
    return value ? 1 : 0;
  }

  /**
   * Checks that {@code buffer} has room for at least {@code floats} floats (or ints).
   *
   * @throws IllegalArgumentException naming the buffer and both sizes
   */
  static void requireFloats(String name, DeviceBuffer buffer, long floats) {
    if (buffer == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    // Compared in floats, because a count of 2^61 floats or more has more bytes than a long holds.
    if (buffer.bytes() / Float.BYTES < floats) {
      throw new IllegalArgumentException(
          String.format(
              "%s holds %d bytes, but %d floats are needed: allocate it with the shape's element"
                  + " count",
              name, buffer.bytes(), floats));
    }
  }

  /** As {@link #requireFloats}, but a null buffer (an absent optional input) passes. */
  static void requireOptional(String name, DeviceBuffer buffer, long floats) {
    if (buffer != null) {
      requireFloats(name, buffer, floats);
    }
  }

  /**
   * Checks that a size fits the kernels' int parameters.
   *
   * @throws IllegalArgumentException if it is negative or 2^31 or more
   */
  static int intSize(String name, long size) {
    if (size < 0 || size > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          name + " is " + size + ", but the kernels take sizes from 0 to 2^31 - 1");
    }
    return (int) size;
  }
}
