package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** Checks the vector exp and expm1 against the double functions rounded to float. */
class VectorMathTest {

  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  /** Allowed distance from the correctly rounded float, in ulps of that float. */
  private static final double ULPS = 2;

  /** Applies {@code function} to every value, one vector at a time. */
  private static float[] apply(java.util.function.UnaryOperator<FloatVector> function, float[] x) {
    float[] padded = new float[SPECIES.loopBound(x.length + SPECIES.length() - 1)];
    System.arraycopy(x, 0, padded, 0, x.length);
    float[] out = new float[padded.length];
    for (int i = 0; i < padded.length; i += SPECIES.length()) {
      function.apply(FloatVector.fromArray(SPECIES, padded, i)).intoArray(out, i);
    }
    return java.util.Arrays.copyOf(out, x.length);
  }

  /** Values from -20 to 20 in steps of 1/1024, plus the ends of the clamped ranges. */
  private static float[] sweep() {
    int steps = 40 * 1024;
    float[] x = new float[steps + 8];
    for (int i = 0; i <= steps; i++) {
      x[i] = -20f + i / 1024f;
    }
    float[] ends = {-87.3f, -87f, -18f, 1e-7f, -1e-7f, 87f, 88f};
    System.arraycopy(ends, 0, x, steps + 1, ends.length);
    return x;
  }

  @Test
  void expWithinTwoUlps() {
    float[] x = sweep();

    float[] actual = apply(VectorMath::exp, x);

    for (int i = 0; i < x.length; i++) {
      float expected = (float) Math.exp(x[i]);
      assertEquals(expected, actual[i], ULPS * Math.ulp(expected), "exp(" + x[i] + ")");
    }
  }

  @Test
  void expm1WithinTwoUlps() {
    float[] x = sweep();

    float[] actual = apply(VectorMath::expm1, x);

    for (int i = 0; i < x.length; i++) {
      float expected = (float) Math.expm1(x[i]);
      assertEquals(expected, actual[i], ULPS * Math.ulp(expected), "expm1(" + x[i] + ")");
    }
  }

  @Test
  void specialValues() {
    float[] x = {Float.NaN, Float.NEGATIVE_INFINITY, -1000f, 0f, -0f};

    float[] exp = apply(VectorMath::exp, x);
    float[] expm1 = apply(VectorMath::expm1, x);

    assertTrue(Float.isNaN(exp[0]), "exp(NaN)");
    assertTrue(Float.isNaN(expm1[0]), "expm1(NaN)");
    assertEquals(0f, exp[1], "exp(-inf)");
    assertEquals(-1f, expm1[1], "expm1(-inf)");
    assertEquals(0f, exp[2], "exp(-1000)");
    assertEquals(-1f, expm1[2], "expm1(-1000)");
    assertEquals(1f, exp[3], "exp(0)");
    assertEquals(0f, expm1[3], "expm1(0)");
    assertEquals(0f, expm1[4], "expm1(-0)");
  }
}
