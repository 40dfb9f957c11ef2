package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.nanStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.tolerance;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class Pool2dKernelsTest {

  /** batch, channels, H, W, kH, kW, strideH, strideW, padH, padW. */
  private static final int[][] GEOMETRIES = {
    {1, 3, 7, 5, 2, 2, 2, 2, 0, 0},
    {2, 3, 7, 5, 3, 3, 2, 2, 1, 1},
    {2, 3, 7, 5, 3, 3, 1, 1, 1, 1},
    {1, 3, 7, 5, 5, 5, 2, 2, 2, 2},
    {2, 2, 7, 5, 1, 1, 1, 1, 0, 0},
    {1, 2, 7, 5, 2, 3, 1, 2, 1, 1},
  };

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (DType dtype : DType.values()) {
      for (int[] v : GEOMETRIES) {
        Pool2dGeometry g =
            new Pool2dGeometry(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
        cases.add(Arguments.of(dtype, g));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void maxForwardMatchesDirectPooling(DType dtype, Pool2dGeometry g) {
    Storage x = randomStorage(dtype, g.inputSize(), 1);
    Storage out = nanStorage(dtype, g.outputSize());
    Storage argmax = argmaxFor(g.outputSize());

    Pool2dKernels.maxForward(x, g, out, argmax);

    int[] expectedArgmax = directArgmax(x, g);
    double[] expected = new double[g.outputSize()];
    for (int o = 0; o < expected.length; o++) {
      expected[o] = x.get(expectedArgmax[o]);
    }
    assertArrayEquals(expectedArgmax, Pool2dKernels.argmaxIndices(argmax));
    assertAllClose(expected, out, 0, "out");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void maxBackwardScattersToArgmax(DType dtype, Pool2dGeometry g) {
    Storage x = randomStorage(dtype, g.inputSize(), 2);
    Storage gradOut = randomStorage(dtype, g.outputSize(), 3);
    Storage out = Storage.allocate(dtype, g.outputSize());
    Storage argmax = argmaxFor(g.outputSize());
    Storage gradInput = nanStorage(dtype, g.inputSize());

    Pool2dKernels.maxForward(x, g, out, argmax);
    Pool2dKernels.maxBackward(gradOut, argmax, g, gradInput);

    double[] expected = new double[g.inputSize()];
    int[] expectedArgmax = directArgmax(x, g);
    for (int o = 0; o < expectedArgmax.length; o++) {
      expected[expectedArgmax[o]] += gradOut.get(o);
    }
    assertAllClose(expected, gradInput, tolerance(dtype), "gradInput");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void avgForwardMatchesDirectPooling(DType dtype, Pool2dGeometry g) {
    Storage x = randomStorage(dtype, g.inputSize(), 4);
    Storage out = nanStorage(dtype, g.outputSize());

    Pool2dKernels.avgForward(x, g, out);

    // Padding counts as zeros in the window, so the divisor is always kH * kW.
    double[] expected = new double[g.outputSize()];
    forEachWindowElement(
        g,
        (o, index) ->
            expected[o] += index < 0 ? 0 : x.get(index) / (g.kernelHeight() * g.kernelWidth()));
    assertAllClose(expected, out, tolerance(dtype), "out");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void avgBackwardMatchesNaiveScatter(DType dtype, Pool2dGeometry g) {
    Storage gradOut = randomStorage(dtype, g.outputSize(), 5);
    Storage gradInput = nanStorage(dtype, g.inputSize());

    Pool2dKernels.avgBackward(gradOut, g, gradInput);

    double[] expected = new double[g.inputSize()];
    forEachWindowElement(
        g,
        (o, index) -> {
          if (index >= 0) {
            expected[index] += gradOut.get(o) / (g.kernelHeight() * g.kernelWidth());
          }
        });
    assertAllClose(expected, gradInput, tolerance(dtype), "gradInput");
  }

  @Test
  void maxForwardTieTakesFirst() {
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 2, 4, 2, 2, 2, 2, 0, 0);
    Storage x = Storage.wrap(new double[] {1, 3, 5, 2, 3, 3, 5, 5});
    Storage out = Storage.allocate(DType.FLOAT64, 2);
    Storage argmax = argmaxFor(2);

    Pool2dKernels.maxForward(x, g, out, argmax);

    assertArrayEquals(new int[] {1, 2}, Pool2dKernels.argmaxIndices(argmax));
  }

  @Test
  void maxForwardPaddingNeverChosen() {
    // All inputs are below zero, so a zero-padded maximum would show up as 0.
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 2, 2, 3, 3, 1, 1, 1, 1);
    Storage x = Storage.wrap(new float[] {-4, -3, -2, -5});
    Storage out = Storage.allocate(DType.FLOAT32, 4);
    Storage argmax = argmaxFor(4);

    Pool2dKernels.maxForward(x, g, out, argmax);

    assertArrayEquals(new int[] {2, 2, 2, 2}, Pool2dKernels.argmaxIndices(argmax));
    assertAllClose(new double[] {-2, -2, -2, -2}, out, 0, "out");
  }

  @Test
  void maxForwardNegativeInfinityWindowPicksInput() {
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 2, 2, 3, 3, 1, 1, 1, 1);
    float inf = Float.NEGATIVE_INFINITY;
    Storage x = Storage.wrap(new float[] {inf, inf, inf, inf});
    Storage out = Storage.allocate(DType.FLOAT32, 4);
    Storage argmax = argmaxFor(4);

    Pool2dKernels.maxForward(x, g, out, argmax);

    assertArrayEquals(new int[] {0, 0, 0, 0}, Pool2dKernels.argmaxIndices(argmax));
    assertEquals(Double.NEGATIVE_INFINITY, out.get(0));
  }

  @Test
  void maxForwardNanPropagates() {
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
    Storage x = Storage.wrap(new double[] {1, Double.NaN, 7, 3});
    Storage out = Storage.allocate(DType.FLOAT64, 1);
    Storage argmax = argmaxFor(1);

    Pool2dKernels.maxForward(x, g, out, argmax);

    assertTrue(Double.isNaN(out.get(0)), "max of a window with NaN should be NaN");
    assertArrayEquals(new int[] {1}, Pool2dKernels.argmaxIndices(argmax));
  }

  @Test
  void maxBackwardOverlappingWindowsAdd() {
    // Stride 1 with a 2x2 kernel: all four windows of this 3x3 input pick the center.
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 3, 3, 2, 2, 1, 1, 0, 0);
    Storage x = Storage.wrap(new double[] {0, 0, 0, 0, 9, 0, 0, 0, 0});
    Storage out = Storage.allocate(DType.FLOAT64, 4);
    Storage argmax = argmaxFor(4);
    Storage gradInput = nanStorage(DType.FLOAT64, 9);

    Pool2dKernels.maxForward(x, g, out, argmax);
    Pool2dKernels.maxBackward(Storage.wrap(new double[] {1, 2, 3, 4}), argmax, g, gradInput);

    assertAllClose(new double[] {0, 0, 0, 0, 10, 0, 0, 0, 0}, gradInput, 0, "gradInput");
  }

  /**
   * Returns float32 argmax storage of {@code size} slots, filled with NaN bits that no index has.
   */
  private static Storage argmaxFor(int size) {
    return nanStorage(DType.FLOAT32, size);
  }

  /** Flat index of the first maximum of each window, found by scanning it in row-major order. */
  private static int[] directArgmax(Storage x, Pool2dGeometry g) {
    int[] argmax = new int[g.outputSize()];
    double[] best = new double[g.outputSize()];
    java.util.Arrays.fill(argmax, -1);
    forEachWindowElement(
        g,
        (o, index) -> {
          if (index >= 0 && (argmax[o] < 0 || x.get(index) > best[o])) {
            argmax[o] = index;
            best[o] = x.get(index);
          }
        });
    return argmax;
  }

  /** Output element and input index of one window position; the index is -1 in the padding. */
  private interface WindowVisitor {
    void visit(int outIndex, int inIndex);
  }

  private static void forEachWindowElement(Pool2dGeometry g, WindowVisitor visitor) {
    int o = 0;
    for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
      for (int oy = 0; oy < g.outHeight(); oy++) {
        for (int ox = 0; ox < g.outWidth(); ox++) {
          for (int ky = 0; ky < g.kernelHeight(); ky++) {
            for (int kx = 0; kx < g.kernelWidth(); kx++) {
              int iy = oy * g.strideHeight() - g.padHeight() + ky;
              int ix = ox * g.strideWidth() - g.padWidth() + kx;
              boolean inside = iy >= 0 && iy < g.inHeight() && ix >= 0 && ix < g.inWidth();
              visitor.visit(o, inside ? (plane * g.inHeight() + iy) * g.inWidth() + ix : -1);
            }
          }
          o++;
        }
      }
    }
  }
}
