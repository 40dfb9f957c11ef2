package dev.kiln.kernels;

/**
 * The size of a CUDA grid or block along x, y and z, as cuLaunchKernel takes it.
 *
 * @param x extent along x, at least 1
 * @param y extent along y, at least 1
 * @param z extent along z, at least 1
 */
public record Dim3(int x, int y, int z) {

  /** Checks that every extent is at least 1. */
  public Dim3 {
    if (x < 1 || y < 1 || z < 1) {
      throw new IllegalArgumentException(
          "grid and block extents must be at least 1, but got (" + x + ", " + y + ", " + z + ")");
    }
  }

  /** Returns a one-dimensional extent {@code (x, 1, 1)}. */
  public static Dim3 of(int x) {
    return new Dim3(x, 1, 1);
  }

  /** Returns a two-dimensional extent {@code (x, y, 1)}. */
  public static Dim3 of(int x, int y) {
    return new Dim3(x, y, 1);
  }

  /** Returns the number of blocks (for a grid) or threads (for a block) this extent covers. */
  public long volume() {
    return (long) x * y * z;
  }

  /**
   * Returns the number of blocks of {@code blockSize} needed to cover {@code count} items, at least
   * 1, as in {@code ceil(count / blockSize)}.
   */
  public static int blocksFor(long count, int blockSize) {
    if (count < 0 || blockSize < 1) {
      throw new IllegalArgumentException(
          "blocksFor needs a count of 0 or more and a block size of 1 or more, got count "
              + count
              + " and block size "
              + blockSize);
    }
    long blocks = Math.max(1, (count + blockSize - 1) / blockSize);
    if (blocks > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          count + " items need more than 2^31 - 1 blocks of " + blockSize + " threads");
    }
    return (int) blocks;
  }
}
