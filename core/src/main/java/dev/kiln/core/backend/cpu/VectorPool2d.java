package dev.kiln.core.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API loop of float32 2x2 max pooling that {@link Pool2dKernels#maxForward} runs in
 * place of its plain loop, with the same outputs and argmax indices. It is called only after {@link
 * VectorSupport#available()}, because this class does not load without jdk.incubator.vector.
 *
 * <p>Threading: the batch x channel planes are split into {@link CpuParallel} chunks. A window
 * never leaves its plane, so every chunk reads and writes only its own planes, and the result does
 * not depend on the thread count.
 */
final class VectorPool2d {

  private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;

  /** Int lanes of the same count as {@link #FLOATS}, for the argmax indices. */
  private static final VectorSpecies<Integer> INTS =
      VectorSpecies.of(int.class, FLOATS.vectorShape());

  private VectorPool2d() {}

  /**
   * Computes 2x2, stride 2 max pooling with the contract of {@link Pool2dKernels#maxForward}: the
   * first of equal maxima in row-major window order wins, and the last NaN wins over everything.
   *
   * <p>Faster than the plain loop because it handles one vector of windows at a time: four gathers
   * load the top-left, top-right, bottom-left and bottom-right elements, and compares with blends
   * pick the maximum and its index without the branches that random data mispredicts. The vectors
   * run over the flat outputs of one plane, so small planes such as 6x6 still fill the lanes.
   */
  static void maxForwardTwoByTwo(float[] x, Pool2dGeometry g, float[] out, int[] argmax) {
    int inWidth = g.inWidth();
    int inPlane = g.inHeight() * inWidth;
    int outPlane = g.outHeight() * g.outWidth();
    int[] topLeft = topLeftOffsets(g);
    // Offsets from the top-left element of the other candidates, in window order: top right,
    // bottom left, bottom right.
    int[] shifts = {1, inWidth, inWidth + 1};
    CpuParallel.forEachChunk(
        g.batch() * g.channels(),
        (chunk, firstPlane, endPlane) -> {
          for (int plane = firstPlane; plane < endPlane; plane++) {
            int planeStart = plane * inPlane;
            for (int o = 0; o < outPlane; o += FLOATS.length()) {
              FloatVector best = FloatVector.fromArray(FLOATS, x, planeStart, topLeft, o);
              IntVector corner = IntVector.fromArray(INTS, topLeft, o).add(planeStart);
              IntVector where = corner;
              for (int shift : shifts) {
                FloatVector candidate =
                    FloatVector.fromArray(FLOATS, x, planeStart + shift, topLeft, o);
                VectorMask<Float> wins =
                    candidate
                        .compare(VectorOperators.GT, best)
                        .or(candidate.test(VectorOperators.IS_NAN));
                best = best.blend(candidate, wins);
                where = where.blend(corner.add(shift), wins.cast(INTS));
              }
              int outIndex = plane * outPlane + o;
              VectorMask<Float> lanes = FLOATS.indexInRange(o, outPlane);
              best.intoArray(out, outIndex, lanes);
              where.intoArray(argmax, outIndex, lanes.cast(INTS));
            }
          }
        });
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
