package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API loops of {@link FastElementwise}: the ReLU gradient, and ELU and its gradient on
 * {@link VectorMath}. Only {@link FastElementwise} calls them, after {@link
 * VectorSupport#available()}, because this class does not load without jdk.incubator.vector.
 */
final class VectorElementwise {

  private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

  private VectorElementwise() {}

  /**
   * Writes the ReLU gradient {@code x[i] <= 0 ? 0 : grad[i]} to {@code out[i]} for i in [start,
   * end), as {@link ElementwiseKernels#reluBackward} describes.
   *
   * <p>One pass instead of building the mask and then multiplying, and a vector compare and blend
   * instead of a branch that random signs mispredict half the time. Runs on the calling thread.
   */
  static void reluBackward(float[] grad, float[] x, float[] out, int start, int end) {
    int i = start;
    for (int bound = start + SPECIES.loopBound(end - start); i < bound; i += SPECIES.length()) {
      FloatVector g = FloatVector.fromArray(SPECIES, grad, i);
      VectorMask<Float> notPositive =
          FloatVector.fromArray(SPECIES, x, i).compare(VectorOperators.LE, 0f);
      g.blend(0f, notPositive).intoArray(out, i);
    }
    for (; i < end; i++) {
      out[i] = x[i] <= 0 ? 0f : grad[i];
    }
  }

  /**
   * Writes ELU, {@code x > 0 ? x : a * expm1(x)}, for i in [start, end). The vector lanes evaluate
   * expm1 in float32, within 2 ulps of the double reference, and NaN stays NaN because the compare
   * fails and {@link VectorMath#expm1} keeps NaN. The last partial vector runs masked, so every
   * element goes through the same function and the result does not depend on how a tensor is split.
   */
  static void elu(double a, float[] in, float[] out, int start, int end) {
    float alpha = (float) a;
    for (int i = start; i < end; i += SPECIES.length()) {
      VectorMask<Float> inside = SPECIES.indexInRange(i, end);
      FloatVector x = FloatVector.fromArray(SPECIES, in, i, inside);
      FloatVector negative = VectorMath.expm1(x).mul(alpha);
      negative.blend(x, x.compare(VectorOperators.GT, 0f)).intoArray(out, i, inside);
    }
  }

  /** Writes the ELU derivative, {@code x > 0 ? 1 : a * exp(x)}, for i in [start, end), as above. */
  static void eluGradient(double a, float[] in, float[] out, int start, int end) {
    float alpha = (float) a;
    FloatVector ones = FloatVector.broadcast(SPECIES, 1f);
    for (int i = start; i < end; i += SPECIES.length()) {
      VectorMask<Float> inside = SPECIES.indexInRange(i, end);
      FloatVector x = FloatVector.fromArray(SPECIES, in, i, inside);
      FloatVector negative = VectorMath.exp(x).mul(alpha);
      negative.blend(ones, x.compare(VectorOperators.GT, 0f)).intoArray(out, i, inside);
    }
  }
}
