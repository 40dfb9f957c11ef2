package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API loop of float32 2x2 max pooling that {@link Pool2dKernels#maxForward} runs in
 * place of its plain loop, with the same outputs and argmax slots. It is called only after {@link
 * VectorSupport#available()}, because this class does not load without jdk.incubator.vector.
 *
 * <p>Threading: the batch x channel planes are split into {@link CpuParallel} chunks. A window
 * never leaves its plane, so every chunk reads and writes only its own planes, and the result does
 * not depend on the thread count.
 */
final class VectorPool2d {

  private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;

  /**
   * Int lanes of the same count as {@link #FLOATS}, for the argmax indices. They are stored into
   * the float argmax slots by reinterpreting their bits, as {@link Pool2dKernels#encodeIndex} does
   * one at a time.
   */
  private static final VectorSpecies<Integer> INTS =
      VectorSpecies.of(int.class, FLOATS.vectorShape());

  private VectorPool2d() {}

  /**
   * The permutation that moves the even lanes of a vector to its first half: lane i of the result
   * is lane 2i, for i below half the lanes. {@link #maxRow} stores only that first half, because a
   * vector of one input row covers LANES / 2 windows. The second half gets the odd lanes only so
   * that every source index lies in [0, LANES) and the shuffle is a permutation. JDK 25's rearrange
   * would also wrap an index of 2i past the end, so this is for clarity, not a requirement.
   */
  private static final VectorShuffle<Float> EVEN =
      VectorShuffle.fromOp(FLOATS, i -> (2 * i) % FLOATS.length() + (2 * i) / FLOATS.length());

  /** The permutation that moves the odd lanes of a vector to its first half, as {@link #EVEN}. */
  private static final VectorShuffle<Float> ODD =
      VectorShuffle.fromOp(
          FLOATS, i -> (2 * i + 1) % FLOATS.length() - (2 * i + 1) / FLOATS.length());

  /** The int lanes 0, 2, 4, ...: the column of each window's top-left element, from a row start. */
  private static final IntVector EVEN_COLUMNS = IntVector.zero(INTS).addIndex(2);

  /**
   * Computes 2x2, stride 2 max pooling with the contract of {@link Pool2dKernels#maxForward}: the
   * first of equal maxima in row-major window order wins, and the last NaN wins over everything.
   *
   * <p>Faster than the plain loop because it handles one vector of windows at a time, and compares
   * with blends pick the maximum and its index without the branches that random data mispredicts.
   * Planes with at least LANES windows per output row go row by row ({@link #maxRow}). A step there
   * pools only LANES / 2 windows, so such a row takes two or more steps, and only the last one may
   * be partly empty: at least two thirds of the row's window slots contain real windows. Planes
   * with narrower output rows, such as the 6x6 output of a 12x12 input, gather their windows from
   * anywhere in the plane ({@link #maxPlaneGathered}), so that they still fill the lanes.
   *
   * <p>NOTE: the row path was timed against the gathers only at 220x220 inputs, so the limit of
   * LANES windows is a choice, not a measured crossover.
   */
  static void maxForwardTwoByTwo(float[] x, Pool2dGeometry g, float[] out, float[] argmax) {
    int inPlane = g.inHeight() * g.inWidth();
    int outPlane = g.outHeight() * g.outWidth();
    boolean byRows = g.outWidth() >= FLOATS.length();
    int[] topLeft = byRows ? null : topLeftOffsets(g);
    CpuParallel.forEachChunk(
        g.batch() * g.channels(),
        (chunk, firstPlane, endPlane) -> {
          for (int plane = firstPlane; plane < endPlane; plane++) {
            if (byRows) {
              for (int oy = 0; oy < g.outHeight(); oy++) {
                int top = plane * inPlane + 2 * oy * g.inWidth();
                maxRow(
                    x,
                    top,
                    g.inWidth(),
                    g.outWidth(),
                    out,
                    argmax,
                    plane * outPlane + oy * g.outWidth());
              }
            } else {
              maxPlaneGathered(x, plane, inPlane, outPlane, g.inWidth(), topLeft, out, argmax);
            }
          }
        });
  }

  /**
   * Pools the row of windows whose top-left elements are {@code x[top + 2 ox]}, for ox in [0,
   * outWidth), into {@code out} and {@code argmax} from {@code outStart}.
   *
   * <p>Each step pools LANES / 2 windows. It loads one vector from the top row and one from the
   * bottom row, and permutes each twice: once to bring its even lanes (the windows' left elements)
   * to the first half, once its odd lanes (their right elements). Only the first half of the
   * results is stored. One permutation of a contiguous load costs less than the gathers of {@link
   * #maxPlaneGathered}: at 220 x 220 inputs, 11 against 21 to 33 ms for a batch of 10 x 32 planes,
   * measured with a throwaway timing loop. The last step masks the loads at the end of the windows,
   * so it reads no element past the row, the last one of an odd width included.
   */
  private static void maxRow(
      float[] x, int top, int inWidth, int outWidth, float[] out, float[] argmax, int outStart) {
    int windows = FLOATS.length() / 2;
    for (int ox = 0; ox < outWidth; ox += windows) {
      int column = top + 2 * ox;
      FloatVector upper;
      FloatVector lower;
      if (ox + windows <= outWidth) {
        upper = FloatVector.fromArray(FLOATS, x, column);
        lower = FloatVector.fromArray(FLOATS, x, column + inWidth);
      } else {
        VectorMask<Float> inside = FLOATS.indexInRange(2 * ox, 2 * outWidth);
        upper = FloatVector.fromArray(FLOATS, x, column, inside);
        lower = FloatVector.fromArray(FLOATS, x, column + inWidth, inside);
      }
      IntVector corner = EVEN_COLUMNS.add(column);
      FloatVector best = upper.rearrange(EVEN);
      IntVector where = corner;
      // The other candidates in window order: top right, bottom left, bottom right.
      FloatVector candidate = upper.rearrange(ODD);
      VectorMask<Float> wins = beats(candidate, best);
      best = best.blend(candidate, wins);
      where = where.blend(corner.add(1), wins.cast(INTS));
      candidate = lower.rearrange(EVEN);
      wins = beats(candidate, best);
      best = best.blend(candidate, wins);
      where = where.blend(corner.add(inWidth), wins.cast(INTS));
      candidate = lower.rearrange(ODD);
      wins = beats(candidate, best);
      best = best.blend(candidate, wins);
      where = where.blend(corner.add(inWidth + 1), wins.cast(INTS));

      VectorMask<Float> stored = FLOATS.indexInRange(ox, Math.min(outWidth, ox + windows));
      best.intoArray(out, outStart + ox, stored);
      where.reinterpretAsFloats().intoArray(argmax, outStart + ox, stored);
    }
  }

  /**
   * Pools one plane a vector of windows at a time over its flat outputs: four gathers load the
   * top-left, top-right, bottom-left and bottom-right elements of the windows whose top-left
   * offsets {@code topLeft} lists.
   */
  private static void maxPlaneGathered(
      float[] x,
      int plane,
      int inPlane,
      int outPlane,
      int inWidth,
      int[] topLeft,
      float[] out,
      float[] argmax) {
    int planeStart = plane * inPlane;
    // Offsets from the top-left element of the other candidates, in window order: top right,
    // bottom left, bottom right.
    int[] shifts = {1, inWidth, inWidth + 1};
    for (int o = 0; o < outPlane; o += FLOATS.length()) {
      FloatVector best = FloatVector.fromArray(FLOATS, x, planeStart, topLeft, o);
      IntVector corner = IntVector.fromArray(INTS, topLeft, o).add(planeStart);
      IntVector where = corner;
      for (int shift : shifts) {
        FloatVector candidate = FloatVector.fromArray(FLOATS, x, planeStart + shift, topLeft, o);
        VectorMask<Float> wins = beats(candidate, best);
        best = best.blend(candidate, wins);
        where = where.blend(corner.add(shift), wins.cast(INTS));
      }
      int outIndex = plane * outPlane + o;
      VectorMask<Float> lanes = FLOATS.indexInRange(o, outPlane);
      best.intoArray(out, outIndex, lanes);
      where.reinterpretAsFloats().intoArray(argmax, outIndex, lanes);
    }
  }

  /** Marks the lanes where a later candidate replaces the best so far: it is larger, or NaN. */
  private static VectorMask<Float> beats(FloatVector candidate, FloatVector best) {
    return candidate.compare(VectorOperators.GT, best).or(candidate.test(VectorOperators.IS_NAN));
  }

  /**
   * Returns, for each output o of a plane, the offset in its input plane of the top-left element of
   * its window, padded with zeros to a whole number of vectors. The padding lanes gather a valid
   * element of the plane, and their results are never stored.
   */
  private static int[] topLeftOffsets(Pool2dGeometry g) {
    int outWidth = g.outWidth();
    int outPlane = g.outHeight() * outWidth;
    int lanes = FLOATS.length();
    int[] offsets = new int[(outPlane + lanes - 1) / lanes * lanes];
    for (int o = 0; o < outPlane; o++) {
      offsets[o] = 2 * (o / outWidth) * g.inWidth() + 2 * (o % outWidth);
    }
    return offsets;
  }
}
