package dev.kiln.core.tensor;

/** Element type of a tensor. Float64 exists on the CPU for gradient checks and references. */
public enum DType {
  FLOAT32("float32", 4),
  FLOAT64("float64", 8);

  private final String displayName;
  private final int byteSize;

  DType(String displayName, int byteSize) {
    this.displayName = displayName;
    this.byteSize = byteSize;
  }

  /** Size of one element in bytes. */
  public int byteSize() {
    return byteSize;
  }

  @Override
  public String toString() {
    return displayName;
  }
}
