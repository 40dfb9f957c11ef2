package dev.kiln.core.backend.cpu;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;

/**
 * Float32 loops for the elementwise ops that training runs most, written out so that the JIT can
 * vectorize them. The generic loop calls the op's lambda once per element, which C2 does not always
 * inline, and a call per element also blocks vectorization.
 *
 * <p>Each loop computes the same double expression as the reference lambda in {@link UnaryOp} or
 * {@link BinaryOp} and rounds it to float, so its results are bit-identical to the reference.
 * {@code FastElementwiseTest} checks this for every op listed here.
 */
final class FastElementwise {

  private FastElementwise() {}

  /**
   * Writes {@code op(in[i], a)} to {@code out[i]} for i in [0, size) and returns true, or returns
   * false without writing when {@code op} has no loop here.
   */
  static boolean unary(UnaryOp op, double a, float[] in, float[] out, int size) {
    switch (op) {
      case RELU -> {
        for (int i = 0; i < size; i++) {
          float x = in[i];
          // x > 0 is false for NaN, and (x != x) keeps the NaN, as the reference does.
          out[i] = x > 0 || x != x ? x : 0f;
        }
      }
      case RELU_GRAD -> {
        for (int i = 0; i < size; i++) {
          out[i] = in[i] > 0 ? 1f : 0f;
        }
      }
      case ADD_SCALAR -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) (in[i] + a);
        }
      }
      case MUL_SCALAR -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) (in[i] * a);
        }
      }
      case NEG -> {
        for (int i = 0; i < size; i++) {
          out[i] = -in[i];
        }
      }
      case ELU -> {
        for (int i = 0; i < size; i++) {
          double x = in[i];
          out[i] = (float) (x > 0 ? x : a * Math.expm1(x));
        }
      }
      case ELU_GRAD -> {
        for (int i = 0; i < size; i++) {
          double x = in[i];
          out[i] = (float) (x > 0 ? 1.0 : a * Math.exp(x));
        }
      }
      case SQRT -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) Math.sqrt(in[i]);
        }
      }
      default -> {
        return false;
      }
    }
    return true;
  }

  /**
   * Writes {@code op(x[i], y[i])} to {@code out[i]} for i in [0, size) and returns true, or returns
   * false without writing when {@code op} has no loop here.
   */
  static boolean binary(BinaryOp op, float[] x, float[] y, float[] out, int size) {
    switch (op) {
      case ADD -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) ((double) x[i] + y[i]);
        }
      }
      case SUB -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) ((double) x[i] - y[i]);
        }
      }
      case MUL -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) ((double) x[i] * y[i]);
        }
      }
      case DIV -> {
        for (int i = 0; i < size; i++) {
          out[i] = (float) ((double) x[i] / y[i]);
        }
      }
      default -> {
        return false;
      }
    }
    return true;
  }
}
