package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.core.tensor.Storage;
import java.util.EnumSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Checks that every float32 elementwise loop is bit-identical to the op's reference lambda, except
 * ELU and its gradient, which evaluate expm1 and exp in float32 vector lanes.
 */
class FastElementwiseTest {

  /** Ops whose loops use the Vector API's float32 transcendental functions. */
  private static final Set<UnaryOp> VECTOR_MATH_OPS = EnumSet.of(UnaryOp.ELU, UnaryOp.ELU_GRAD);

  /**
   * Float ulps that a vector-math result may differ from the double reference rounded to float: the
   * float32 expm1 and exp are accurate to about 1 ulp, and the product with alpha rounds once more.
   */
  private static final double VECTOR_MATH_ULPS = 2;

  /** Random values plus the special cases that the ops treat apart. */
  private static float[] inputs() {
    Random random = new Random(7);
    float[] values = new float[203];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * 3);
    }
    float[] special = {
      0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, 1e30f
    };
    System.arraycopy(special, 0, values, 0, special.length);
    return values;
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(UnaryOp.class)
  void unaryMatchesReference(UnaryOp op) {
    float[] x = inputs();
    double a = 0.7;
    double b = 1.3;
    Storage out = Storage.wrap(new float[x.length]);

    ElementwiseKernels.unary(op, a, b, Storage.wrap(x), out);

    for (int i = 0; i < x.length; i++) {
      float expected = (float) op.apply(x[i], a, b);
      float actual = out.floats()[i];
      String where = op + " at x=" + x[i] + ": expected " + expected + ", got " + actual;
      if (VECTOR_MATH_OPS.contains(op) && Float.isNaN(expected)) {
        assertTrue(Float.isNaN(actual), where);
      } else if (VECTOR_MATH_OPS.contains(op)) {
        assertEquals(expected, actual, VECTOR_MATH_ULPS * Math.ulp(expected), where);
      } else {
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual), where);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(
      value = UnaryOp.class,
      names = {"ELU", "ELU_GRAD", "RELU", "MUL_SCALAR"})
  void unaryLargeSplitMatchesOneRange(UnaryOp op) {
    int size = ElementwiseKernels.PARALLEL_MIN_ELEMENTS * 3 + 17;
    Random random = new Random(11);
    float[] x = new float[size];
    for (int i = 0; i < size; i++) {
      x[i] = (float) (random.nextGaussian() * 3);
    }
    float[] oneRange = new float[size];
    FastElementwise.unary(op, 0.7, x, oneRange, 0, size);
    Storage out = Storage.wrap(new float[size]);

    ElementwiseKernels.unary(op, 0.7, 0, Storage.wrap(x), out);

    assertArrayEquals(oneRange, out.floats());
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(BinaryOp.class)
  void binaryMatchesReference(BinaryOp op) {
    float[] x = inputs();
    float[] y = inputs();
    float[] reversed = new float[y.length];
    for (int i = 0; i < y.length; i++) {
      reversed[i] = y[y.length - 1 - i];
    }
    int[] shape = {x.length};
    Storage out = Storage.wrap(new float[x.length]);

    ElementwiseKernels.binary(
        op, Storage.wrap(x), shape, Storage.wrap(reversed), shape, out, shape);

    for (int i = 0; i < x.length; i++) {
      float expected = (float) op.apply(x[i], reversed[i]);
      assertEquals(
          Float.floatToRawIntBits(expected),
          Float.floatToRawIntBits(out.floats()[i]),
          op + " at x=" + x[i] + ", y=" + reversed[i]);
    }
  }

  /** The last size is split over the threads, at a chunk border inside a vector. */
  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 5, 16, 203, ElementwiseKernels.PARALLEL_MIN_ELEMENTS + 37})
  void reluBackwardSelectsGradient(int size) {
    float[] base = inputs();
    float[] x = new float[size];
    float[] grad = new float[size];
    // Repeat the inputs, and pair every input with gradients of both signs and the special values.
    for (int i = 0; i < size; i++) {
      x[i] = base[i % base.length];
      grad[i] = base[(i * 7 + 3) % Math.min(size, base.length)];
    }
    Storage out = Storage.wrap(new float[size]);

    ElementwiseKernels.reluBackward(Storage.wrap(grad), Storage.wrap(x), out);

    for (int i = 0; i < size; i++) {
      float expected = x[i] <= 0 ? 0f : grad[i];
      assertEquals(
          Float.floatToRawIntBits(expected),
          Float.floatToRawIntBits(out.floats()[i]),
          "at x=" + x[i] + ", grad=" + grad[i]);
    }
  }

  @Test
  void reluBackwardFloat64SelectsGradient() {
    double[] x = {-1.5, -0.0, 0.0, 2.0, Double.NaN, 3.0};
    double[] grad = {2.0, -3.0, 4.0, -5.0, 6.0, Double.NaN};
    Storage out = Storage.wrap(new double[x.length]);

    ElementwiseKernels.reluBackward(Storage.wrap(grad), Storage.wrap(x), out);

    double[] expected = {0.0, 0.0, 0.0, -5.0, 6.0, Double.NaN};
    for (int i = 0; i < x.length; i++) {
      assertEquals(expected[i], out.doubles()[i], "at x=" + x[i] + ", grad=" + grad[i]);
    }
  }

  @Test
  void reluBackwardRejectsSizeMismatch() {
    Storage grad = Storage.wrap(new float[4]);
    Storage x = Storage.wrap(new float[5]);
    Storage out = Storage.wrap(new float[4]);

    assertThrows(
        IllegalArgumentException.class, () -> ElementwiseKernels.reluBackward(grad, x, out));
  }
}
