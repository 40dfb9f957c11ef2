package dev.kiln.core.backend.device;

import dev.kiln.core.backend.device.DeviceMatmul.Kernel;
import dev.kiln.kernels.Dim3;

/**
 * The choices that {@link DeviceMatmul}'s default product makes without cuBLAS: which tiled kernel
 * computes a product, and whether k is cut into slices. Both follow the size of C and the device's
 * number of multiprocessors, because a product that gives too few blocks to fill every
 * multiprocessor leaves the GPU partly idle.
 */
final class MatmulHeuristics {

  /**
   * Blocks of {@link Kernel#TILED_128} that one multiprocessor runs at once. The kernel's {@code
   * __launch_bounds__} requests two, which caps it at 128 registers per thread, so two blocks of
   * 256 threads use all 65536 registers of a multiprocessor.
   */
  static final int BIG_TILE_BLOCKS_PER_MULTIPROCESSOR = 2;

  /**
   * Full waves of {@link Kernel#TILED_128} blocks from which the default product takes that kernel.
   * Blocks run in waves, and a last wave that is nearly empty costs nearly as long as a full one.
   * From two full waves on, that last wave is at most a third of the time. Below that, the 64 x 64
   * kernel's four times as many blocks fill the waves more evenly. See {@link #defaultKernel}.
   *
   * <p>NOTE: this crossover is reasoned from occupancy, not measured. The GPU check's GEMM stage
   * times both kernels at 4096, whose 1024 tiles are above it on any GPU of up to 256
   * multiprocessors.
   */
  static final int BIG_TILE_WAVES = 2;

  /**
   * Blocks of {@code kiln_matmul_tiled_slices} that one multiprocessor runs at once. For sm_90,
   * ptxas from CUDA 13.0 gives that kernel 48 registers per thread, so 4 blocks of 256 threads fit
   * (up to 64 registers would). When the default product cuts k into slices, it aims for one wave
   * of these blocks (see {@link #sliceDepthFor}). Since the slices times the 64 x 64 tiles stay
   * below twice that wave, the partial products take at most 2 * 4 * 4096 floats (128 KiB) per
   * multiprocessor, 17 MB on an H200.
   */
  static final int SLICED_BLOCKS_PER_MULTIPROCESSOR = 4;

  /**
   * The shortest slice of k. Each slice writes a partial C that the sum reads back, so a slice of
   * 512 steps spends 512 multiply-adds per element of C for each extra store and load.
   */
  static final int MIN_SLICE_DEPTH = 512;

  /** Steps of k in one panel of {@code kiln_matmul_tiled}, which slices are a multiple of. */
  static final int PANEL_DEPTH = 16;

  /**
   * The deepest slice of {@link #batchSliceDepthFor}: the largest multiple of {@value #PANEL_DEPTH}
   * up to {@link DeviceMatmul#MAX_DEPTH}, because the sliced kernel takes the depth as an int.
   */
  static final int MAX_SLICE_DEPTH = DeviceMatmul.MAX_DEPTH / PANEL_DEPTH * PANEL_DEPTH;

  private MatmulHeuristics() {}

  /**
   * Returns the depth of the slices of k for the default product on a device of {@code
   * multiprocessors} multiprocessors, a multiple of {@value #PANEL_DEPTH}, or 0 to compute it in
   * one piece. One wave of the sliced kernel is {@value #SLICED_BLOCKS_PER_MULTIPROCESSOR} blocks
   * per multiprocessor, 528 on an H200. The product is cut when C has fewer tiles of 64 x 64 than
   * that wave and k has room for at least two slices of {@value #MIN_SLICE_DEPTH} steps. It then
   * takes as many slices as bring the blocks up to about one wave, as long as each slice stays at
   * least {@value #MIN_SLICE_DEPTH} steps deep.
   *
   * <p>NOTE: the thresholds are reasoned from occupancy and memory traffic, not measured on a GPU.
   *
   * @throws IllegalArgumentException if {@code multiprocessors} is below 1
   */
  static int sliceDepthFor(int m, int n, int k, int multiprocessors) {
    long wave = (long) SLICED_BLOCKS_PER_MULTIPROCESSOR * requirePositive(multiprocessors);
    long tiles =
        (long) Dim3.blocksFor(m, Kernel.TILED.tile()) * Dim3.blocksFor(n, Kernel.TILED.tile());
    long slices = Math.min((wave + tiles - 1) / tiles, k / MIN_SLICE_DEPTH);
    // At most one grid layer per slice, 65535, which only a device of over 16000 multiprocessors
    // would ask for.
    slices = Math.min(slices, LaunchShapes.MAX_GRID_Z);
    if (slices < 2) {
      return 0;
    }
    long depth = (k + slices - 1) / slices;
    return (int) ((depth + PANEL_DEPTH - 1) / PANEL_DEPTH * PANEL_DEPTH);
  }

  /**
   * Returns the depth of the slices for a sum of {@code batches} products of k steps each, which
   * {@code kiln_matmul_tiled_slices} takes as one sum of batches * k steps, on a device of {@code
   * multiprocessors} multiprocessors. As in {@link #sliceDepthFor}, the slices bring the blocks up
   * to about one wave and stay at least {@value #MIN_SLICE_DEPTH} steps deep, and the depth is a
   * multiple of {@value #PANEL_DEPTH}. But there is always at least one slice, and a slice is at
   * most {@link #MAX_SLICE_DEPTH} steps deep, so a depth always comes back.
   *
   * <p>NOTE: as for a single product, the thresholds are reasoned, not measured on a GPU.
   *
   * @throws IllegalArgumentException if {@code multiprocessors} is below 1, or there are no steps
   */
  static int batchSliceDepthFor(int m, int n, int k, int batches, int multiprocessors) {
    long steps = (long) batches * k;
    if (steps < 1) {
      throw new IllegalArgumentException(
          "a sum of products in slices needs at least one step, got batches="
              + batches
              + " and k="
              + k);
    }
    long wave = (long) SLICED_BLOCKS_PER_MULTIPROCESSOR * requirePositive(multiprocessors);
    long tiles =
        (long) Dim3.blocksFor(m, Kernel.TILED.tile()) * Dim3.blocksFor(n, Kernel.TILED.tile());
    long slices = Math.min((wave + tiles - 1) / tiles, steps / MIN_SLICE_DEPTH);
    slices = Math.max(slices, (steps + MAX_SLICE_DEPTH - 1) / MAX_SLICE_DEPTH);
    long depth = (steps + slices - 1) / slices;
    return (int) ((depth + PANEL_DEPTH - 1) / PANEL_DEPTH * PANEL_DEPTH);
  }

  /**
   * Returns the kernel that the default product runs without cuBLAS on a device of {@code
   * multiprocessors} multiprocessors: {@link Kernel#TILED_128} when C has at least 128 rows and 128
   * columns and enough tiles of 128 x 128 for {@value #BIG_TILE_WAVES} full waves of that kernel
   * ({@value #BIG_TILE_BLOCKS_PER_MULTIPROCESSOR} blocks per multiprocessor, so 528 tiles on an
   * H200), else {@link Kernel#TILED}. A C of fewer than 128 rows, such as a linear layer's output
   * for a batch of 64, would leave rows of every 128 x 128 tile empty.
   *
   * @throws IllegalArgumentException if {@code multiprocessors} is below 1
   */
  static Kernel defaultKernel(int m, int n, int multiprocessors) {
    return defaultKernel(m, n, 1, multiprocessors);
  }

  /**
   * Returns the kernel for a batch of {@code batches} products of m x n in one launch: as for one
   * product, but counting the tiles of every product of the batch, because the launch runs them
   * all.
   *
   * @throws IllegalArgumentException if {@code multiprocessors} is below 1
   */
  static Kernel defaultKernel(int m, int n, int batches, int multiprocessors) {
    long threshold =
        (long) BIG_TILE_WAVES
            * BIG_TILE_BLOCKS_PER_MULTIPROCESSOR
            * requirePositive(multiprocessors);
    int tile = Kernel.TILED_128.tile();
    long bigTiles = (long) Dim3.blocksFor(m, tile) * Dim3.blocksFor(n, tile) * batches;
    boolean large = m >= tile && n >= tile && bigTiles >= threshold;
    return large ? Kernel.TILED_128 : Kernel.TILED;
  }

  private static int requirePositive(int multiprocessors) {
    if (multiprocessors < 1) {
      throw new IllegalArgumentException(
          "a device has at least 1 multiprocessor, got " + multiprocessors);
    }
    return multiprocessors;
  }
}
