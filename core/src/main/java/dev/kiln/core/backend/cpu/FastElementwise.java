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
 * {@code FastElementwiseTest} checks this for every op listed here. ELU and its gradient are the
 * exception: they evaluate expm1 and exp in float32 vector lanes with {@link VectorMath}, because
 * the scalar double functions took 38% of a naimishnet training step, and they stay within 2 float
 * ulps of the reference.
 *
 * <p>The loops that use the Vector API live in {@link VectorElementwise}, and this class calls them
 * only when {@link VectorSupport#available()}, so it also loads in a JVM without that module.
 */
final class FastElementwise {

  private FastElementwise() {}

  /**
   * Writes the ReLU gradient {@code x[i] <= 0 ? 0 : grad[i]} to {@code out[i]} for i in [start,
   * end), as {@link ElementwiseKernels#reluBackward} describes. Runs in {@link VectorElementwise}
   * when the JVM has the Vector API, else in a scalar loop with the same results. Runs on the
   * calling thread.
   */
  static void reluBackward(float[] grad, float[] x, float[] out, int start, int end) {
    if (VectorSupport.available()) {
      VectorElementwise.reluBackward(grad, x, out, start, end);
      return;
    }
    for (int i = start; i < end; i++) {
      out[i] = x[i] <= 0 ? 0f : grad[i];
    }
  }

  /**
   * Tests whether {@link #unary} has a loop for {@code op}. ELU and its gradient have one only when
   * the JVM has the Vector API, and otherwise run in the caller's reference loop.
   */
  static boolean hasUnary(UnaryOp op) {
    return switch (op) {
      case RELU, RELU_GRAD, ADD_SCALAR, MUL_SCALAR, NEG, SQRT -> true;
      case ELU, ELU_GRAD -> VectorSupport.available();
      default -> false;
    };
  }

  /**
   * Writes {@code op(in[i], a)} to {@code out[i]} for i in [0, size) and returns true, or returns
   * false without writing when {@code op} has no loop here.
   */
  static boolean unary(UnaryOp op, double a, float[] in, float[] out, int size) {
    return unary(op, a, in, out, 0, size);
  }

  /**
   * Writes {@code op(in[i], a)} to {@code out[i]} for i in [start, end) and returns true, or
   * returns false without writing when {@code op} has no loop here.
   */
  static boolean unary(UnaryOp op, double a, float[] in, float[] out, int start, int end) {
    switch (op) {
      case RELU -> {
        // Math.max returns NaN for NaN and +0 for -0, as the reference does. It compiles to a
        // vector max instruction, where the reference's branch is mispredicted on random signs.
        for (int i = start; i < end; i++) {
          out[i] = Math.max(in[i], 0f);
        }
      }
      case RELU_GRAD -> {
        for (int i = start; i < end; i++) {
          out[i] = in[i] <= 0 ? 0f : 1f;
        }
      }
      case ADD_SCALAR -> {
        for (int i = start; i < end; i++) {
          out[i] = (float) (in[i] + a);
        }
      }
      case MUL_SCALAR -> {
        for (int i = start; i < end; i++) {
          out[i] = (float) (in[i] * a);
        }
      }
      case NEG -> {
        for (int i = start; i < end; i++) {
          out[i] = -in[i];
        }
      }
      case ELU, ELU_GRAD -> {
        if (!VectorSupport.available()) {
          return false;
        }
        if (op == UnaryOp.ELU) {
          VectorElementwise.elu(a, in, out, start, end);
        } else {
          VectorElementwise.eluGradient(a, in, out, start, end);
        }
      }
      case SQRT -> {
        for (int i = start; i < end; i++) {
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
