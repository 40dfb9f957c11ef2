package dev.kiln.core.ops;

/** Rule by which a loss combines its per-element values into the scalar it returns. */
public enum Reduction {
  /** The sum divided by the number of elements, which is NaN for an empty input as in PyTorch. */
  MEAN("mean"),
  /** The plain sum, which is 0 for an empty input. */
  SUM("sum");

  private final String displayName;

  Reduction(String displayName) {
    this.displayName = displayName;
  }

  /** Returns the lowercase name that PyTorch's {@code reduction} argument uses. */
  @Override
  public String toString() {
    return displayName;
  }
}
