package dev.kiln.core.backend.cpu;

import java.util.Arrays;

/**
 * The float32 max pooling gradient loop that {@link Pool2dKernels} runs in place of its plain loop,
 * with the same results, and the window test for the forward loop of {@link VectorPool2d}. The
 * plain loops stay the reference that {@code FastPool2dTest} compares against. The forward loop
 * uses the Vector API, so it lives in its own class and this one also loads in a JVM without
 * jdk.incubator.vector.
 *
 * <p>Threading: the batch x channel planes are split into {@link CpuParallel} chunks. A window
 * never leaves its plane, so every chunk reads and writes only its own planes, and the result does
 * not depend on the thread count.
 */
final class FastPool2d {

  private FastPool2d() {}

  /** Tests for the 2x2 window with stride 2 and no padding, the window of the keypoint presets. */
  static boolean isTwoByTwo(Pool2dGeometry g) {
    return g.kernelHeight() == 2
        && g.kernelWidth() == 2
        && g.strideHeight() == 2
        && g.strideWidth() == 2
        && g.padHeight() == 0
        && g.padWidth() == 0;
  }

  /**
   * Computes the max pooling gradient with the contract of {@link Pool2dKernels#maxBackward}:
   * zeros, then gradInput[argmax[o]] += gradOut[o], for any window geometry, where argmax contains
   * the slots that {@link Pool2dKernels#encodeIndex} wrote. Each plane's chunk zeroes and fills its
   * own planes, so the argmax of every output must lie in the output's plane, which {@link
   * Pool2dKernels#maxForward} guarantees.
   *
   * @throws IllegalArgumentException if an argmax index lies outside its output's plane
   */
  static void maxBackward(float[] gradOut, float[] argmax, Pool2dGeometry g, float[] gradInput) {
    int inPlane = g.inHeight() * g.inWidth();
    int outPlane = g.outHeight() * g.outWidth();
    CpuParallel.forEachChunk(
        g.batch() * g.channels(),
        (chunk, firstPlane, endPlane) -> {
          Arrays.fill(gradInput, firstPlane * inPlane, endPlane * inPlane, 0f);
          for (int plane = firstPlane; plane < endPlane; plane++) {
            int planeStart = plane * inPlane;
            for (int o = plane * outPlane; o < (plane + 1) * outPlane; o++) {
              int index = Pool2dKernels.decodeIndex(argmax[o]);
              if (index < planeStart || index >= planeStart + inPlane) {
                throw new IllegalArgumentException(
                    "max pooling argmax["
                        + o
                        + "] = "
                        + index
                        + " is outside plane "
                        + plane
                        + " of the input, elements ["
                        + planeStart
                        + ", "
                        + (planeStart + inPlane)
                        + "): pass the argmax that maxForward filled");
              }
              gradInput[index] += gradOut[o];
            }
          }
        });
  }
}
