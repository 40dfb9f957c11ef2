package dev.kiln.core.backend.cuda;

/**
 * The extent of a kernel's grid or block in three dimensions, as CUDA's {@code dim3}.
 *
 * @param x the extent along x, at least 1
 * @param y the extent along y, at least 1
 * @param z the extent along z, at least 1
 */
public record Dim3(int x, int y, int z) {

  public Dim3 {
    if (x < 1 || y < 1 || z < 1) {
      throw new IllegalArgumentException(
          "every extent of a grid or block must be at least 1, got ("
              + x
              + ", "
              + y
              + ", "
              + z
              + ")");
    }
  }

  /** Returns the one-dimensional extent {@code (x, 1, 1)}. */
  public static Dim3 of(int x) {
    return new Dim3(x, 1, 1);
  }

  /** Returns the two-dimensional extent {@code (x, y, 1)}. */
  public static Dim3 of(int x, int y) {
    return new Dim3(x, y, 1);
  }

  /** Returns the number of blocks or threads: {@code x * y * z}. */
  public long count() {
    return (long) x * y * z;
  }
}
