package dev.kiln.core.backend.cpu;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

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

  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  private FastElementwise() {}

  /**
   * Writes the ReLU gradient {@code grad[i] * (x[i] > 0 ? 1 : 0)} to {@code out[i]} for i in [0,
   * size), bit-identical to multiplying by the {@code RELU_GRAD} mask: where x is not positive the
   * product grad * 0 is kept, so a negative gradient gives -0 and an infinite or NaN one gives NaN.
   *
   * <p>One pass instead of building the mask and then multiplying, and a vector compare and blend
   * instead of a branch that random signs mispredict half the time. Runs on the calling thread.
   */
  static void reluBackward(float[] grad, float[] x, float[] out, int size) {
    int i = 0;
    for (int end = SPECIES.loopBound(size); i < end; i += SPECIES.length()) {
      FloatVector g = FloatVector.fromArray(SPECIES, grad, i);
      VectorMask<Float> positive =
          FloatVector.fromArray(SPECIES, x, i).compare(VectorOperators.GT, 0f);
      g.mul(0f).blend(g, positive).intoArray(out, i);
    }
    for (; i < size; i++) {
      out[i] = x[i] > 0 ? grad[i] : grad[i] * 0f;
    }
  }

  /**
   * Writes {@code op(in[i], a)} to {@code out[i]} for i in [0, size) and returns true, or returns
   * false without writing when {@code op} has no loop here.
   */
  static boolean unary(UnaryOp op, double a, float[] in, float[] out, int size) {
    switch (op) {
      case RELU -> {
        // Math.max returns NaN for NaN and +0 for -0, as the reference does. It compiles to a
        // vector max instruction, where the reference's branch is mispredicted on random signs.
        for (int i = 0; i < size; i++) {
          out[i] = Math.max(in[i], 0f);
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
