package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of pooling.cu under CPU emulation and compares them with a double-precision
 * reference that follows kiln's CPU Pool2dKernels. That reference uses floor-mode output sizes,
 * padding that max pooling never chooses, and averages that divide by the whole window area with
 * countIncludePad (the CPU kernel's only mode), or else by the number of window elements inside the
 * input.
 */
class PoolingKernelsTest {

  /**
   * Relative tolerance of float32 sums, scaled by the largest expected magnitude (at least 1): a
   * window sum or a gather adds at most 25 values of N(0, 1) size in float. Under emulation the
   * errors stayed below 3e-7, and the margin covers the GPU's fused multiply-adds and other
   * summation orders.
   */
  private static final double SUM_TOLERANCE = 1e-5;

  /** Threads per block: the odd sizes below leave the last block part-full. */
  private static final int BLOCK = 64;

  private static EmulatedKernels kernels;

  @BeforeAll
  static void loadKernels() {
    kernels = KernelTestSupport.kernels();
  }

  /** One pooling geometry; sizes and names as in pooling.cu. */
  record PoolCase(
      int batch,
      int channels,
      int inHeight,
      int inWidth,
      int kernelHeight,
      int kernelWidth,
      int strideHeight,
      int strideWidth,
      int padHeight,
      int padWidth) {

    int outHeight() {
      return (inHeight + 2 * padHeight - kernelHeight) / strideHeight + 1;
    }

    int outWidth() {
      return (inWidth + 2 * padWidth - kernelWidth) / strideWidth + 1;
    }

    int inputSize() {
      return batch * channels * inHeight * inWidth;
    }

    int outputSize() {
      return batch * channels * outHeight() * outWidth();
    }

    Object[] sizeArgs() {
      return new Object[] {
        batch,
        channels,
        inHeight,
        inWidth,
        kernelHeight,
        kernelWidth,
        strideHeight,
        strideWidth,
        padHeight,
        padWidth
      };
    }

    /** Returns flat input indexes of the elements of window o, in row-major order. */
    int[] window(int o) {
      int ox = o % outWidth();
      int oy = o / outWidth() % outHeight();
      int plane = o / (outWidth() * outHeight());
      int[] indexes = new int[kernelHeight * kernelWidth];
      int count = 0;
      for (int ky = 0; ky < kernelHeight; ky++) {
        for (int kx = 0; kx < kernelWidth; kx++) {
          int iy = oy * strideHeight - padHeight + ky;
          int ix = ox * strideWidth - padWidth + kx;
          if (iy >= 0 && iy < inHeight && ix >= 0 && ix < inWidth) {
            indexes[count++] = (plane * inHeight + iy) * inWidth + ix;
          }
        }
      }
      return Arrays.copyOf(indexes, count);
    }
  }

  static Stream<PoolCase> cases() {
    return Stream.of(
        // batch 1, 2x2 windows with stride 2, which do not overlap
        new PoolCase(1, 3, 7, 5, 2, 2, 2, 2, 0, 0),
        // batch 3, 3x3 windows with stride 2 and padding 1, which overlap by one row and column
        new PoolCase(3, 3, 7, 5, 3, 3, 2, 2, 1, 1),
        // 3x3 windows with stride 1, where each pixel is in up to nine windows
        new PoolCase(3, 2, 9, 7, 3, 3, 1, 1, 1, 1),
        // different kernel, stride and padding per axis
        new PoolCase(1, 5, 8, 11, 2, 3, 1, 2, 1, 1),
        // 5x5 windows with padding 2 on 37 channels
        new PoolCase(1, 37, 5, 3, 5, 5, 2, 2, 2, 2));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void maxForwardChoosesWindowMaximum(PoolCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(g.inputSize());
      MemorySegment y = support.filled(g.outputSize(), Float.NaN);
      MemorySegment argmax = support.ints(g.outputSize());

      launch(
          "kiln_pool_max_forward", g.outputSize(), g.sizeArgs(), support.segmentOf(x), y, argmax);

      int[] expectedArgmax = referenceArgmax(g, x);
      float[] expected = new float[g.outputSize()];
      for (int o = 0; o < expected.length; o++) {
        expected[o] = x[expectedArgmax[o]];
      }
      assertArrayEquals(expectedArgmax, argmax.toArray(ValueLayout.JAVA_INT), "argmax of " + g);
      assertArrayEquals(expected, floats(y), "max of " + g);
    }
  }

  /** Equal maxima go to the first in row-major order; NaN wins, and of several the last one. */
  @Test
  void maxForwardBreaksTiesAndPropagatesNan() {
    PoolCase g = new PoolCase(1, 1, 4, 4, 3, 3, 1, 1, 0, 0);
    float[] x = new float[g.inputSize()];
    x[5] = Float.NaN; // inside all four windows
    x[10] = Float.NaN; // inside all four windows, later in row-major order
    float[] ties = new float[g.inputSize()];
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment y = support.filled(g.outputSize(), Float.NaN);
      MemorySegment argmax = support.ints(g.outputSize());
      MemorySegment tieY = support.filled(g.outputSize(), Float.NaN);
      MemorySegment tieArgmax = support.ints(g.outputSize());

      launch(
          "kiln_pool_max_forward", g.outputSize(), g.sizeArgs(), support.segmentOf(x), y, argmax);
      launch(
          "kiln_pool_max_forward",
          g.outputSize(),
          g.sizeArgs(),
          support.segmentOf(ties),
          tieY,
          tieArgmax);

      assertArrayEquals(
          new int[] {10, 10, 10, 10}, argmax.toArray(ValueLayout.JAVA_INT), "NaN argmax");
      for (float value : floats(y)) {
        assertTrue(Float.isNaN(value), "a window with a NaN must output NaN, got " + value);
      }
      // The first element of window (oy, ox) is at oy * 4 + ox.
      assertArrayEquals(
          new int[] {0, 1, 4, 5}, tieArgmax.toArray(ValueLayout.JAVA_INT), "argmax of ties");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void maxBackwardRoutesGradientToArgmax(PoolCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(g.inputSize());
      // Integer steps make ties certain, so overlapping windows share a maximum.
      for (int i = 0; i < x.length; i++) {
        x[i] = Math.round(x[i]);
      }
      float[] gradY = support.gaussianFloats(g.outputSize());
      MemorySegment y = support.filled(g.outputSize(), Float.NaN);
      MemorySegment argmax = support.ints(g.outputSize());
      MemorySegment gradX = support.filled(g.inputSize(), Float.NaN);

      launch(
          "kiln_pool_max_forward", g.outputSize(), g.sizeArgs(), support.segmentOf(x), y, argmax);
      launch(
          "kiln_pool_max_backward",
          g.inputSize(),
          g.sizeArgs(),
          support.segmentOf(gradY),
          argmax,
          gradX);

      int[] chosen = referenceArgmax(g, x);
      double[] expected = new double[g.inputSize()];
      for (int o = 0; o < chosen.length; o++) {
        expected[chosen[o]] += gradY[o];
      }
      assertClose(expected, floats(gradX), "max pooling gradX of " + g);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void avgForwardDividesByWindowArea(PoolCase g) {
    for (int countIncludePad = 0; countIncludePad <= 1; countIncludePad++) {
      try (KernelTestSupport support = new KernelTestSupport()) {
        float[] x = support.gaussianFloats(g.inputSize());
        MemorySegment y = support.filled(g.outputSize(), Float.NaN);

        launch(
            "kiln_pool_avg_forward",
            g.outputSize(),
            append(g.sizeArgs(), countIncludePad),
            support.segmentOf(x),
            y);

        double[] expected = new double[g.outputSize()];
        for (int o = 0; o < expected.length; o++) {
          int[] window = g.window(o);
          double sum = 0;
          for (int index : window) {
            sum += x[index];
          }
          expected[o] = sum / divisor(g, window, countIncludePad);
        }
        assertClose(
            expected, floats(y), "average of " + g + ", countIncludePad " + countIncludePad);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void avgBackwardSpreadsGradientOverWindow(PoolCase g) {
    for (int countIncludePad = 0; countIncludePad <= 1; countIncludePad++) {
      try (KernelTestSupport support = new KernelTestSupport()) {
        float[] gradY = support.gaussianFloats(g.outputSize());
        MemorySegment gradX = support.filled(g.inputSize(), Float.NaN);

        launch(
            "kiln_pool_avg_backward",
            g.inputSize(),
            append(g.sizeArgs(), countIncludePad),
            support.segmentOf(gradY),
            gradX);

        double[] expected = new double[g.inputSize()];
        for (int o = 0; o < g.outputSize(); o++) {
          int[] window = g.window(o);
          for (int index : window) {
            expected[index] += gradY[o] / divisor(g, window, countIncludePad);
          }
        }
        assertClose(
            expected,
            floats(gradX),
            "average gradX of " + g + ", countIncludePad " + countIncludePad);
      }
    }
  }

  /**
   * Returns the flat index of each window's maximum as the CPU kernel chooses it: the first of
   * equal maxima, or the last NaN.
   */
  private static int[] referenceArgmax(PoolCase g, float[] x) {
    int[] argmax = new int[g.outputSize()];
    for (int o = 0; o < argmax.length; o++) {
      int[] window = g.window(o);
      int best = window[0];
      for (int index : window) {
        if (x[index] > x[best] || Float.isNaN(x[index])) {
          best = index;
        }
      }
      argmax[o] = best;
    }
    return argmax;
  }

  /** Returns the window area with countIncludePad, else the number of elements inside the input. */
  private static double divisor(PoolCase g, int[] window, int countIncludePad) {
    return countIncludePad != 0 ? g.kernelHeight() * g.kernelWidth() : window.length;
  }

  /** Launches with one thread per element and the pointers before the int parameters. */
  private static void launch(String kernel, int elements, Object[] sizes, Object... pointers) {
    Object[] args = Arrays.copyOf(pointers, pointers.length + sizes.length);
    System.arraycopy(sizes, 0, args, pointers.length, sizes.length);
    kernels.launch(kernel, Dim3.of(Dim3.blocksFor(elements, BLOCK)), Dim3.of(BLOCK), 0, args);
  }

  private static Object[] append(Object[] args, Object last) {
    Object[] result = Arrays.copyOf(args, args.length + 1);
    result[args.length] = last;
    return result;
  }

  /** Reads every float of a segment that a test allocated. */
  private static float[] floats(MemorySegment segment) {
    return KernelTestSupport.toFloats(segment, (int) (segment.byteSize() / Float.BYTES));
  }

  /**
   * Asserts each element within SUM_TOLERANCE times the largest expected magnitude (at least 1),
   * because a sum's rounding error scales with its terms, not with a result that may be near 0.
   */
  private static void assertClose(double[] expected, float[] actual, String description) {
    double scale = 1;
    for (double value : expected) {
      scale = Math.max(scale, Math.abs(value));
    }
    KernelTestSupport.assertClose(description, expected, actual, SUM_TOLERANCE * scale, 0);
  }
}
