package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.core.tensor.Storage;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Checks that every float32 elementwise loop is bit-identical to the op's reference lambda. */
class FastElementwiseTest {

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
      assertEquals(
          Float.floatToRawIntBits(expected),
          Float.floatToRawIntBits(out.floats()[i]),
          op + " at x=" + x[i] + ": expected " + expected + ", got " + out.floats()[i]);
    }
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

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 5, 16, 203})
  void reluBackwardMatchesMaskProduct(int size) {
    float[] x = Arrays.copyOf(inputs(), size);
    float[] grad = Arrays.copyOf(inputs(), size);
    // Pair every input with gradients of both signs and the special values.
    for (int i = 0; i < size; i++) {
      grad[i] = grad[(i * 7 + 3) % size];
    }
    Storage out = Storage.wrap(new float[size]);

    ElementwiseKernels.reluBackward(Storage.wrap(grad), Storage.wrap(x), out);

    for (int i = 0; i < size; i++) {
      float mask = (float) UnaryOp.RELU_GRAD.apply(x[i], 0, 0);
      float expected = (float) BinaryOp.MUL.apply(grad[i], mask);
      assertEquals(
          Float.floatToRawIntBits(expected),
          Float.floatToRawIntBits(out.floats()[i]),
          "at x=" + x[i] + ", grad=" + grad[i]);
    }
  }

  @Test
  void reluBackwardFloat64MatchesMaskProduct() {
    double[] x = {-1.5, -0.0, 0.0, 2.0, Double.NaN, 3.0};
    double[] grad = {2.0, -3.0, 4.0, -5.0, 6.0, Double.NaN};
    Storage out = Storage.wrap(new double[x.length]);

    ElementwiseKernels.reluBackward(Storage.wrap(grad), Storage.wrap(x), out);

    double[] expected = {0.0, -0.0, 0.0, -5.0, 0.0, Double.NaN};
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
