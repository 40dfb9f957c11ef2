package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.core.tensor.Storage;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

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
}
