package dev.kiln.core.ops;

/**
 * Elementwise functions of one tensor, with up to two scalar parameters {@code a} and {@code b}.
 *
 * <p>The lambda beside each constant is the reference definition that the CPU backend runs and that
 * GPU kernels are tested against. Constants ending in {@code _GRAD} are derivatives used by
 * backward passes; those marked "from output" take the forward output y rather than the input.
 */
public enum UnaryOp {
  NEG((x, a, b) -> -x),
  EXP((x, a, b) -> Math.exp(x)),
  LOG((x, a, b) -> Math.log(x)),
  SQRT((x, a, b) -> Math.sqrt(x)),
  ABS((x, a, b) -> Math.abs(x)),
  /** sign(x), with sign(0) = 0 as in PyTorch, so |x| has gradient 0 at 0. */
  SIGN((x, a, b) -> Math.signum(x)),
  /** x^a. */
  POW((x, a, b) -> Math.pow(x, a)),
  /** x + a. */
  ADD_SCALAR((x, a, b) -> x + a),
  /** x * a. */
  MUL_SCALAR((x, a, b) -> x * a),
  /** min(max(x, a), b); NaN stays NaN. */
  CLAMP((x, a, b) -> Double.isNaN(x) ? x : Math.min(Math.max(x, a), b)),
  /** 1 where a &lt;= x &lt;= b, else 0: the derivative of CLAMP. */
  CLAMP_GRAD((x, a, b) -> x >= a && x <= b ? 1.0 : 0.0),
  RELU((x, a, b) -> x > 0 ? x : (Double.isNaN(x) ? x : 0.0)),
  /**
   * 0 for x &lt;= 0, else 1, so a NaN input passes its gradient. PyTorch's derivatives.yaml gives
   * ReLU's backward as {@code threshold_backward(grad, result, 0)}, which zeroes it where the
   * output is at most 0.
   */
  RELU_GRAD((x, a, b) -> x <= 0 ? 0.0 : 1.0),
  /** x for x &gt; 0, else a*x. */
  LEAKY_RELU((x, a, b) -> x > 0 ? x : a * x),
  LEAKY_RELU_GRAD((x, a, b) -> x > 0 ? 1.0 : a),
  /** x for x &gt; 0, else a*(e^x - 1). */
  ELU((x, a, b) -> x > 0 ? x : a * Math.expm1(x)),
  ELU_GRAD((x, a, b) -> x > 0 ? 1.0 : a * Math.exp(x)),
  TANH((x, a, b) -> Math.tanh(x)),
  /** From output: 1 - y^2. */
  TANH_GRAD((y, a, b) -> 1.0 - y * y),
  /** 1 / (1 + e^-x), written to stay finite for large |x|. */
  SIGMOID((x, a, b) -> x >= 0 ? 1.0 / (1.0 + Math.exp(-x)) : Math.exp(x) / (1.0 + Math.exp(x))),
  /** From output: y * (1 - y). */
  SIGMOID_GRAD((y, a, b) -> y * (1.0 - y));

  /** The scalar function behind an op. */
  @FunctionalInterface
  public interface Function {
    double apply(double x, double a, double b);
  }

  private final Function function;

  UnaryOp(Function function) {
    this.function = function;
  }

  /** Applies the op to one value. */
  public double apply(double x, double a, double b) {
    return function.apply(x, a, b);
  }
}
