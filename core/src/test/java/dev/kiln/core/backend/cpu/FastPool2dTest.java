package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Compares the float32 max pooling fast paths with the plain reference loops bit for bit. The core
 * tests run with {@code kiln.threads=2}, so the planes are split into two chunks.
 */
class FastPool2dTest {

  /** batch, channels, inHeight, inWidth, kernelH, kernelW, strideH, strideW, padH, padW. */
  static int[][] geometries() {
    return new int[][] {
      {1, 1, 2, 2, 2, 2, 2, 2, 0, 0}, // one window, batch 1
      {1, 3, 7, 9, 2, 2, 2, 2, 0, 0}, // odd sizes drop the last row and column
      {3, 5, 12, 12, 2, 2, 2, 2, 0, 0}, // 6x6 output planes, fewer than one vector per row
      {2, 3, 20, 70, 2, 2, 2, 2, 0, 0}, // 35 columns, more than two vectors per row
      {1, 2, 6, 67, 2, 2, 2, 2, 0, 0}, // 33 columns from an odd width: the row path's last column
      {1, 2, 4, 64, 2, 2, 2, 2, 0, 0}, // 32 columns, whole vectors only
      {2, 3, 7, 5, 3, 3, 2, 2, 1, 1}, // overlapping windows with padding: plain forward
      {2, 2, 6, 6, 2, 2, 1, 1, 0, 0} // stride 1: plain forward, overlapping gradients
    };
  }

  private static Pool2dGeometry geometry(int[] p) {
    return new Pool2dGeometry(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]);
  }

  /** Returns random values rounded to halves, so that windows often contain equal maxima. */
  private static Storage tiedInput(int size, long seed) {
    Storage x = randomStorage(DType.FLOAT32, size, seed);
    float[] values = x.floats();
    for (int i = 0; i < size; i++) {
      values[i] = Math.round(values[i] * 2) / 2f;
    }
    return x;
  }

  @ParameterizedTest
  @MethodSource("geometries")
  void maxForwardMatchesPlain(int[] sizes) {
    Pool2dGeometry g = geometry(sizes);
    Storage x = tiedInput(g.inputSize(), 11);
    // NaNs at the first, a middle and the last element exercise the NaN rule and the array ends.
    x.floats()[0] = Float.NaN;
    x.floats()[g.inputSize() / 2] = Float.NaN;
    x.floats()[g.inputSize() - 1] = Float.NaN;

    Storage expected = Storage.allocate(DType.FLOAT32, g.outputSize());
    float[] expectedArgmax = new float[g.outputSize()];
    Pool2dKernels.maxForwardPlain(x, g, expected, expectedArgmax);
    Storage actual = KernelAsserts.nanStorage(DType.FLOAT32, g.outputSize());
    Storage actualArgmax = KernelAsserts.nanStorage(DType.FLOAT32, g.outputSize());
    Pool2dKernels.maxForward(x, g, actual, actualArgmax);

    assertArrayEquals(
        Pool2dKernels.argmaxIndices(Storage.wrap(expectedArgmax)),
        Pool2dKernels.argmaxIndices(actualArgmax),
        "argmax");
    assertArrayEquals(expected.floats(), actual.floats(), "output");
  }

  @ParameterizedTest
  @MethodSource("geometries")
  void maxBackwardMatchesPlain(int[] sizes) {
    Pool2dGeometry g = geometry(sizes);
    Storage x = tiedInput(g.inputSize(), 12);
    Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage argmax = Storage.allocate(DType.FLOAT32, g.outputSize());
    Pool2dKernels.maxForward(x, g, out, argmax);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 13);

    Storage expected = Storage.allocate(DType.FLOAT32, g.inputSize());
    Pool2dKernels.maxBackwardPlain(gradOut, argmax.floats(), expected);
    Storage actual = KernelAsserts.nanStorage(DType.FLOAT32, g.inputSize());
    Pool2dKernels.maxBackward(gradOut, argmax, g, actual);

    assertArrayEquals(expected.floats(), actual.floats());
  }

  @Test
  void twoByTwoRepeatsBitForBit() {
    Pool2dGeometry g = new Pool2dGeometry(5, 3, 14, 10, 2, 2, 2, 2, 0, 0);
    assertEquals(2, CpuParallel.chunkCount(g.batch() * g.channels()), "expected two chunks");
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 14);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 15);

    Storage firstOut = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage secondOut = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage firstArgmax = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage secondArgmax = Storage.allocate(DType.FLOAT32, g.outputSize());
    Pool2dKernels.maxForward(x, g, firstOut, firstArgmax);
    Pool2dKernels.maxForward(x, g, secondOut, secondArgmax);
    Storage firstGrad = Storage.allocate(DType.FLOAT32, g.inputSize());
    Storage secondGrad = Storage.allocate(DType.FLOAT32, g.inputSize());
    Pool2dKernels.maxBackward(gradOut, firstArgmax, g, firstGrad);
    Pool2dKernels.maxBackward(gradOut, secondArgmax, g, secondGrad);

    assertArrayEquals(firstOut.floats(), secondOut.floats(), "forward");
    assertArrayEquals(
        Pool2dKernels.argmaxIndices(firstArgmax),
        Pool2dKernels.argmaxIndices(secondArgmax),
        "argmax");
    assertArrayEquals(firstGrad.floats(), secondGrad.floats(), "backward");
  }

  @Test
  void maxBackwardRejectsArgmaxInAnotherPlane() {
    Pool2dGeometry g = new Pool2dGeometry(1, 2, 4, 4, 2, 2, 2, 2, 0, 0);
    Storage argmax = Storage.allocate(DType.FLOAT32, g.outputSize());
    // Output 0 belongs to plane 0, whose input elements are [0, 16).
    argmax.floats()[0] = Pool2dKernels.encodeIndex(20);
    Storage gradOut = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage gradInput = Storage.allocate(DType.FLOAT32, g.inputSize());

    assertThrows(
        IllegalArgumentException.class,
        () -> Pool2dKernels.maxBackward(gradOut, argmax, g, gradInput));
  }
}
