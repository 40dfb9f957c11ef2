package dev.kiln.core.ops;

/**
 * Elementwise functions of two tensors, applied after NumPy broadcasting. The lambda is the
 * reference definition that the CPU backend runs.
 */
public enum BinaryOp {
  ADD((x, y) -> x + y),
  SUB((x, y) -> x - y),
  MUL((x, y) -> x * y),
  DIV((x, y) -> x / y),
  /** max(x, y); NaN if either is NaN. */
  MAXIMUM((x, y) -> Math.max(x, y)),
  /** 1 where x &gt; y, else 0. */
  GREATER((x, y) -> x > y ? 1.0 : 0.0),
  /** 1 where x == y, else 0. */
  EQUAL((x, y) -> x == y ? 1.0 : 0.0);

  /** The scalar function behind an op. */
  @FunctionalInterface
  public interface Function {
    double apply(double x, double y);
  }

  private final Function function;

  BinaryOp(Function function) {
    this.function = function;
  }

  /** Applies the op to one pair of values. */
  public double apply(double x, double y) {
    return function.apply(x, y);
  }
}
