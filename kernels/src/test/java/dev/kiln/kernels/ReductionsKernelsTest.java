package dev.kiln.kernels;

import static dev.kiln.kernels.KernelTestSupport.assertClose;
import static dev.kiln.kernels.KernelTestSupport.toFloats;
import static dev.kiln.kernels.KernelTestSupport.toInts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Runs the kernels of reductions.cu under CPU emulation and compares them with a double-precision
 * reference that follows kiln's CPU ReduceKernels and Reductions. The reference sums over marked
 * dimensions with the output in row-major order, computes a two-pass variance, and takes the
 * maximum along one dimension with the first position on ties and NaN as the maximum.
 */
class ReductionsKernelsTest {

  /**
   * Error of a float sum relative to the sum of the magnitudes of its terms. Each thread adds about
   * count / 256 terms in sequence, and a tree of depth 13 then combines the threads. So the float
   * sum carries at most about (count / 256 + 13) roundings of 2^-24 each, below 1e-6 for the sizes
   * here, and 2e-6 leaves headroom.
   */
  private static final double SUM_ERROR = 2e-6;

  /** Threads per block for the one-block-per-output kernels. */
  private static final int BLOCK = 256;

  private final EmulatedKernels kernels = KernelTestSupport.kernels();
  private KernelTestSupport support;

  @BeforeEach
  void open() {
    support = new KernelTestSupport();
  }

  @AfterEach
  void close() {
    support.close();
  }

  @Test
  void sumOverMiddleDimension() {
    checkSum(new int[] {3, 37, 5}, new boolean[] {false, true, false}, 1f);
  }

  @Test
  void sumOverOuterAndInnerDimensions() {
    checkSum(new int[] {7, 3, 11, 2}, new boolean[] {true, false, true, false}, 1f);
  }

  @Test
  void sumOverEveryElement() {
    checkSum(new int[] {1037}, new boolean[] {true}, 1f);
  }

  @Test
  void meanIsScaledSum() {
    checkSum(new int[] {5, 301}, new boolean[] {false, true}, 1f / 301);
  }

  @Test
  void sumOverNoDimensionCopies() {
    checkSum(new int[] {4, 9}, new boolean[] {false, false}, 1f);
  }

  private void checkSum(int[] shape, boolean[] reduced, float scale) {
    float[] x = support.randomFloats(product(shape));
    int outputs = outputCount(shape, reduced);
    MemorySegment out = support.floats(outputs);
    kernels.launch(
        "kiln_reductions_sum",
        Dim3.of(outputs),
        Dim3.of(BLOCK),
        0,
        support.segmentOf(x),
        out,
        support.segmentOf(shape),
        support.segmentOf(flags(reduced)),
        shape.length,
        scale);

    double[] sums = new double[outputs];
    double[] magnitudes = new double[outputs];
    int[] target = outputIndex(shape, reduced);
    for (int i = 0; i < x.length; i++) {
      sums[target[i]] += x[i];
      magnitudes[target[i]] += Math.abs(x[i]);
    }
    float[] actual = toFloats(out, outputs);
    for (int o = 0; o < outputs; o++) {
      double expected = scale * sums[o];
      double bound = SUM_ERROR * scale * magnitudes[o] + 1e-7;
      if (!(Math.abs(actual[o] - expected) <= bound)) {
        fail(
            String.format(
                "sum over %s of shape %s: output %d is %.9g but expected %.9g (bound %.3g)",
                Arrays.toString(reduced), Arrays.toString(shape), o, actual[o], expected, bound));
      }
    }
  }

  @Test
  void varianceUnbiasedAndBiased() {
    int[] shape = {7, 3, 11};
    boolean[] reduced = {true, false, true};
    float[] x = support.randomFloats(product(shape), -2, 3);
    int outputs = outputCount(shape, reduced);
    int count = x.length / outputs;
    int[] target = outputIndex(shape, reduced);
    double[] means = new double[outputs];
    for (int i = 0; i < x.length; i++) {
      means[target[i]] += x[i] / (double) count;
    }
    double[] squares = new double[outputs];
    for (int i = 0; i < x.length; i++) {
      squares[target[i]] += (x[i] - means[target[i]]) * (x[i] - means[target[i]]);
    }

    for (int unbiased = 0; unbiased <= 1; unbiased++) {
      MemorySegment out = support.floats(outputs);
      kernels.launch(
          "kiln_reductions_variance",
          Dim3.of(outputs),
          Dim3.of(BLOCK),
          0,
          support.segmentOf(x),
          out,
          support.segmentOf(shape),
          support.segmentOf(flags(reduced)),
          shape.length,
          unbiased);
      double[] expected = new double[outputs];
      for (int o = 0; o < outputs; o++) {
        expected[o] = squares[o] / (unbiased == 1 ? count - 1 : count);
      }
      // Both passes are float sums of positive-ish terms of similar size: SUM_ERROR relative,
      // plus the float mean's error, which enters the squares only to second order.
      assertClose(
          unbiased == 1 ? "unbiased variance" : "biased variance",
          expected,
          toFloats(out, outputs),
          1e-7,
          4 * SUM_ERROR);
    }
  }

  @Test
  void unbiasedVarianceOfOneElementIsNan() {
    int[] shape = {3, 1};
    MemorySegment out = support.floats(3);
    kernels.launch(
        "kiln_reductions_variance",
        Dim3.of(3),
        Dim3.of(32),
        0,
        support.segmentOf(new float[] {1f, 2f, 3f}),
        out,
        support.segmentOf(shape),
        support.segmentOf(new int[] {0, 1}),
        2,
        1);
    float[] actual = toFloats(out, 3);
    for (int o = 0; o < 3; o++) {
      assertTrue(Float.isNaN(actual[o]), "output " + o + " is " + actual[o] + ", expected NaN");
    }
  }

  @Test
  void maxAlongMiddleDimensionWithTiesAndNan() {
    int outer = 4;
    int length = 300;
    int inner = 3;
    float[] x = support.randomFloats(outer * length * inner);
    // Output (0, 0): the maximum value appears twice, and the first position must win.
    x[(0 * length + 40) * inner] = 5f;
    x[(0 * length + 260) * inner] = 5f;
    // Output (1, 2): two NaNs, and the first one is the maximum.
    x[(length + 100) * inner + 2] = Float.NaN;
    x[(length + 17) * inner + 2] = Float.NaN;
    // Output (2, 1): every element is -infinity.
    for (int k = 0; k < length; k++) {
      x[(2 * length + k) * inner + 1] = Float.NEGATIVE_INFINITY;
    }
    checkMax(x, outer, length, inner);
  }

  @Test
  void maxOverWholeVector() {
    float[] x = support.randomFloats(1037);
    checkMax(x, 1, x.length, 1);
  }

  @Test
  void maxAlongShortDimension() {
    // length below the warp size: most threads hold only the placeholder.
    checkMax(support.randomFloats(5 * 3 * 7), 5, 3, 7);
  }

  private void checkMax(float[] x, int outer, int length, int inner) {
    int outputs = outer * inner;
    MemorySegment values = support.floats(outputs);
    MemorySegment indices = support.ints(outputs);
    kernels.launch(
        "kiln_reductions_max",
        Dim3.of(outputs),
        Dim3.of(BLOCK),
        0,
        support.segmentOf(x),
        values,
        indices,
        outer,
        length,
        inner);

    double[] expectedValues = new double[outputs];
    int[] expectedIndices = new int[outputs];
    for (int o = 0; o < outer; o++) {
      for (int i = 0; i < inner; i++) {
        int base = o * length * inner + i;
        double best = x[base];
        int bestIndex = 0;
        for (int k = 1; k < length && !Double.isNaN(best); k++) {
          double value = x[base + k * inner];
          if (value > best || Double.isNaN(value)) {
            best = value;
            bestIndex = k;
          }
        }
        expectedValues[o * inner + i] = best;
        expectedIndices[o * inner + i] = bestIndex;
      }
    }
    // The maximum is one of the inputs, so it must match exactly.
    assertClose("max values", expectedValues, toFloats(values, outputs), 0, 0);
    assertArrayEquals(expectedIndices, toInts(indices, outputs), "max positions");
  }

  /** For each input element, the row-major index of the output it reduces into. */
  private static int[] outputIndex(int[] shape, boolean[] reduced) {
    int[] target = new int[product(shape)];
    for (int i = 0; i < target.length; i++) {
      int rest = i;
      int output = 0;
      int stride = 1;
      for (int d = shape.length - 1; d >= 0; d--) {
        int index = rest % shape[d];
        rest /= shape[d];
        if (!reduced[d]) {
          output += index * stride;
          stride *= shape[d];
        }
      }
      target[i] = output;
    }
    return target;
  }

  private static int outputCount(int[] shape, boolean[] reduced) {
    int count = 1;
    for (int d = 0; d < shape.length; d++) {
      count *= reduced[d] ? 1 : shape[d];
    }
    return count;
  }

  private static int[] flags(boolean[] reduced) {
    int[] flags = new int[reduced.length];
    for (int d = 0; d < reduced.length; d++) {
      flags[d] = reduced[d] ? 1 : 0;
    }
    return flags;
  }

  private static int product(int[] shape) {
    int product = 1;
    for (int size : shape) {
      product *= size;
    }
    return product;
  }
}
