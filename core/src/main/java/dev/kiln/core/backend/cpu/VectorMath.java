package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 exp and expm1 on Vector API lanes, built only from operations that IEEE 754 rounds
 * exactly (add, multiply, fused multiply-add, conversions and bit shifts).
 *
 * <p>Why not {@code lanewise(VectorOperators.EXP)}: the Vector API computes that with a native
 * vector math library once C2 compiles the loop, and with {@link Math#exp} per lane before then.
 * The two differ in the last bit, so a training run would depend on when the JIT compiled which
 * loop, and a seeded run would no longer repeat bit for bit. The operations used here give the same
 * bits in the interpreter and in compiled code.
 *
 * <p>Method (Cody and Waite's range reduction): write x = n ln 2 + r with n the integer nearest to
 * x / ln 2, so |r| <= ln 2 / 2. Then exp(x) = 2^n exp(r) and expm1(x) = 2^n expm1(r) + (2^n - 1).
 * ln 2 is split into a high part with trailing zero bits and a low part, so n ln 2 is subtracted
 * without rounding error for the n that occur here. expm1(r) is its Taylor polynomial to degree 7,
 * whose truncation error is below 2e-8 relative on |r| <= ln 2 / 2. 2^n is built from its exponent
 * bits. Results are within 2 ulps of the correctly rounded value (FastElementwiseTest and
 * VectorMathTest check this).
 *
 * <p>Limits: exp clamps its input to [-87.3, 88] and returns 0 below -87.3, where the true value is
 * a subnormal float. expm1 clamps to [-18, 88], because expm1(-18) already rounds to -1. Above 88
 * both return a large finite value instead of infinity. NaN inputs give NaN.
 *
 * <p>The NaN step at the end of exp and expm1 is written out in both instead of being shared
 * through a helper method. HotSpot's C2 compiler stops inlining ordinary methods once a compilation
 * reaches 18,000 IR nodes (NodeCountInliningCutoff), and each Vector API operation adds hundreds.
 * In {@link VectorElementwise#eluGradient}, which inlines all of exp into its loop, that step comes
 * at about 17,600 nodes, so a helper there was sometimes left as a real call. Such a call boxes its
 * vectors on every iteration, which allocates and runs several times slower.
 */
final class VectorMath {

  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  private static final float LOG2_E = 1.44269504f;

  /** High part of ln 2: 0.693145751953125, with 12 trailing zero bits in its significand. */
  private static final float LN2_HIGH = 0.693145751953125f;

  /** ln 2 minus {@link #LN2_HIGH}. */
  private static final float LN2_LOW = 1.42860677e-6f;

  private static final float EXP_MIN = -87.3f;
  private static final float EXPM1_MIN = -18f;
  private static final float MAX = 88f;

  private VectorMath() {}

  /** Returns e^x in each lane. */
  static FloatVector exp(FloatVector x) {
    FloatVector clamped = x.max(EXP_MIN).min(MAX);
    FloatVector n = nearestMultipleOfLn2(clamped);
    FloatVector r = reduce(clamped, n);
    FloatVector scale = powerOfTwo(n);
    // 2^n (1 + p) = 2^n p + 2^n, with one rounding.
    FloatVector result = scale.fma(expm1Polynomial(r), scale);
    result = result.blend(0f, x.compare(VectorOperators.LT, EXP_MIN));
    // NaN lanes get the input back, which the clamp replaced.
    return result.blend(x, x.compare(VectorOperators.NE, x));
  }

  /** Returns e^x - 1 in each lane, accurate also where x is near 0. */
  static FloatVector expm1(FloatVector x) {
    FloatVector clamped = x.max(EXPM1_MIN).min(MAX);
    FloatVector n = nearestMultipleOfLn2(clamped);
    FloatVector r = reduce(clamped, n);
    FloatVector scale = powerOfTwo(n);
    // 2^n - 1 is exact for n >= -24, and the fma rounds once. For n = -25 and -26, which the clamp
    // also allows, 2^n - 1 rounds, but by less than an ulp of a result that is close to -1.
    FloatVector result = scale.fma(expm1Polynomial(r), scale.sub(1f));
    // NaN lanes get the input back, which the clamp replaced.
    return result.blend(x, x.compare(VectorOperators.NE, x));
  }

  /** Returns n, the integer nearest to x / ln 2, as a float. */
  private static FloatVector nearestMultipleOfLn2(FloatVector x) {
    FloatVector t = x.mul(LOG2_E);
    VectorMask<Float> negative = t.compare(VectorOperators.LT, 0f);
    FloatVector half = FloatVector.broadcast(SPECIES, 0.5f).blend(-0.5f, negative);
    // The conversion truncates toward zero, so adding +-0.5 first rounds half away from zero.
    IntVector n = (IntVector) t.add(half).convert(VectorOperators.F2I, 0);
    return (FloatVector) n.convert(VectorOperators.I2F, 0);
  }

  /** Returns r = x - n ln 2, in two fused steps. */
  private static FloatVector reduce(FloatVector x, FloatVector n) {
    FloatVector negativeN = n.neg();
    return negativeN.fma(FloatVector.broadcast(SPECIES, LN2_HIGH), x).add(negativeN.mul(LN2_LOW));
  }

  /** Returns 2^n for integer n in [-126, 127], by writing n + 127 into the exponent bits. */
  private static FloatVector powerOfTwo(FloatVector n) {
    IntVector exponent = (IntVector) n.convert(VectorOperators.F2I, 0);
    return exponent.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
  }

  /** Returns the degree-7 Taylor polynomial of e^r - 1, in Horner form. */
  private static FloatVector expm1Polynomial(FloatVector r) {
    FloatVector p = r.mul(1f / 5040).add(1f / 720);
    p = p.fma(r, FloatVector.broadcast(SPECIES, 1f / 120));
    p = p.fma(r, FloatVector.broadcast(SPECIES, 1f / 24));
    p = p.fma(r, FloatVector.broadcast(SPECIES, 1f / 6));
    p = p.fma(r, FloatVector.broadcast(SPECIES, 0.5f));
    p = p.fma(r, FloatVector.broadcast(SPECIES, 1f));
    return p.mul(r);
  }
}
