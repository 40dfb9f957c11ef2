package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.nanStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Conv2dKernels.Method;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Checks each forced float32 convolution method against the float64 im2col method. The shapes reach
 * the edges of the implicit-GEMM packing and of the batched method's column blocks: panels that end
 * mid-row or past the last output position, taps in the padding, strides, dilations, several depth
 * blocks and several backward-data blocks.
 */
class Conv2dMethodsTest {

  /**
   * Float32 sums here have up to about 2000 products (the weight gradient sums batch x positions),
   * whose rounding error grows like sqrt(terms) x 2^-24 of their magnitude, about 3e-6 of the
   * largest result. 2e-5 of the largest magnitude leaves a margin of several times that.
   */
  private static final double TOLERANCE = 2e-5;

  /** batch, inC, H, W, outC, kH, kW, strideH, strideW, padH, padW, dilationH, dilationW. */
  private static final int[][] GEOMETRIES = {
    {1, 1, 9, 9, 1, 1, 1, 1, 1, 0, 0, 1, 1}, // 1x1 pointwise, one panel that ends mid-panel
    {3, 3, 9, 40, 7, 1, 1, 1, 1, 1, 0, 1, 1}, // 1x1 with padding, so not pointwise
    {3, 2, 11, 37, 13, 3, 3, 1, 1, 1, 1, 1, 1}, // 3x3, rows longer than a panel
    {1, 3, 13, 12, 5, 3, 3, 2, 2, 1, 1, 1, 1}, // stride 2, padding 1
    {3, 2, 15, 14, 7, 3, 3, 1, 2, 2, 0, 2, 1}, // dilation 2 and settings per axis
    {1, 12, 44, 44, 7, 5, 5, 1, 1, 2, 2, 1, 1}, // 300 taps, several depth and data blocks
    {3, 1, 21, 23, 6, 5, 5, 2, 1, 0, 3, 1, 2}, // 5x5, stride 2, wide padding
    {1, 2, 6, 7, 260, 3, 3, 1, 1, 1, 1, 1, 1}, // 260 output channels, two depth blocks of data
  };

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (Method method : Method.values()) {
      for (int[] v : GEOMETRIES) {
        Conv2dGeometry g =
            new Conv2dGeometry(
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]);
        cases.add(Arguments.of(method, g));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void forwardMatchesFloat64Reference(Method method, Conv2dGeometry g) {
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 1);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), 2);
    Storage bias = randomStorage(DType.FLOAT32, g.outChannels(), 3);
    Storage out = nanStorage(DType.FLOAT32, g.outputSize());
    Storage expected = Storage.allocate(DType.FLOAT64, g.outputSize());

    Conv2dKernels.forward(method, x, weight, bias, g, out);
    Conv2dKernels.forward(Method.IM2COL, wide(x), wide(weight), wide(bias), g, expected);

    assertAllClose(values(expected), out, TOLERANCE, method + " forward");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void backwardDataMatchesFloat64Reference(Method method, Conv2dGeometry g) {
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 4);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), 2);
    Storage gradInput = nanStorage(DType.FLOAT32, g.inputSize());
    Storage expected = Storage.allocate(DType.FLOAT64, g.inputSize());

    Conv2dKernels.backwardData(method, gradOut, weight, g, gradInput);
    Conv2dKernels.backwardData(Method.IM2COL, wide(gradOut), wide(weight), g, expected);

    assertAllClose(values(expected), gradInput, TOLERANCE, method + " backwardData");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void backwardWeightMatchesFloat64Reference(Method method, Conv2dGeometry g) {
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 4);
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 1);
    Storage gradWeight = nanStorage(DType.FLOAT32, g.weightSize());
    Storage expected = Storage.allocate(DType.FLOAT64, g.weightSize());

    Conv2dKernels.backwardWeight(method, gradOut, x, g, gradWeight);
    Conv2dKernels.backwardWeight(Method.IM2COL, wide(gradOut), wide(x), g, expected);

    assertAllClose(values(expected), gradWeight, TOLERANCE, method + " backwardWeight");
  }

  /**
   * Runs a small convolution, then a large one that grows the workspace buffers, then the small one
   * again: stale workspace contents must not change its bits.
   */
  @Test
  void workspaceReuseKeepsBits() {
    Conv2dGeometry small = new Conv2dGeometry(2, 3, 9, 10, 5, 3, 3, 1, 1, 1, 1, 1, 1);
    Conv2dGeometry large = new Conv2dGeometry(2, 4, 30, 31, 9, 5, 5, 1, 1, 2, 2, 1, 1);
    for (Method method : List.of(Method.IM2COL, Method.IMPLICIT, Method.BATCHED)) {
      float[][] first = runAll(method, small, 10);
      runAll(method, large, 20);
      float[][] second = runAll(method, small, 10);

      assertArrayEquals(first[0], second[0], method + " forward");
      assertArrayEquals(first[1], second[1], method + " backwardData");
      assertArrayEquals(first[2], second[2], method + " backwardWeight");
    }
  }

  /**
   * Splits a batch of 5 into groups of at most 2 images (sizes 1, 2, 2), so the batched method
   * fills column blocks of different widths and the weight gradient adds up three products.
   */
  @Test
  void batchedMatchesReferenceInGroups() {
    Conv2dGeometry g = new Conv2dGeometry(5, 3, 7, 9, 6, 3, 3, 2, 1, 1, 1, 1, 1);
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 1);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), 2);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 4);
    Storage out = nanStorage(DType.FLOAT32, g.outputSize());
    Storage gradInput = nanStorage(DType.FLOAT32, g.inputSize());
    Storage gradWeight = nanStorage(DType.FLOAT32, g.weightSize());
    Storage expectedOut = Storage.allocate(DType.FLOAT64, g.outputSize());
    Storage expectedGradInput = Storage.allocate(DType.FLOAT64, g.inputSize());
    Storage expectedGradWeight = Storage.allocate(DType.FLOAT64, g.weightSize());

    Conv2dBatched.forward(x, weight, g, out, 2);
    Conv2dBatched.backwardData(gradOut, weight, g, gradInput, 2);
    Conv2dBatched.backwardWeight(gradOut, x, g, gradWeight, 2);
    Conv2dKernels.forward(Method.IM2COL, wide(x), wide(weight), null, g, expectedOut);
    Conv2dKernels.backwardData(Method.IM2COL, wide(gradOut), wide(weight), g, expectedGradInput);
    Conv2dKernels.backwardWeight(Method.IM2COL, wide(gradOut), wide(x), g, expectedGradWeight);

    assertAllClose(values(expectedOut), out, TOLERANCE, "grouped forward");
    assertAllClose(values(expectedGradInput), gradInput, TOLERANCE, "grouped backwardData");
    assertAllClose(values(expectedGradWeight), gradWeight, TOLERANCE, "grouped backwardWeight");
  }

  /** Runs the batched method on float64 in groups of 2 and compares it with float64 im2col. */
  @Test
  void batchedFloat64MatchesIm2col() {
    Conv2dGeometry g = new Conv2dGeometry(3, 2, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    Storage x = wide(randomStorage(DType.FLOAT32, g.inputSize(), 1));
    Storage weight = wide(randomStorage(DType.FLOAT32, g.weightSize(), 2));
    Storage gradOut = wide(randomStorage(DType.FLOAT32, g.outputSize(), 4));
    Storage out = nanStorage(DType.FLOAT64, g.outputSize());
    Storage gradInput = nanStorage(DType.FLOAT64, g.inputSize());
    Storage gradWeight = nanStorage(DType.FLOAT64, g.weightSize());
    Storage expectedOut = Storage.allocate(DType.FLOAT64, g.outputSize());
    Storage expectedGradInput = Storage.allocate(DType.FLOAT64, g.inputSize());
    Storage expectedGradWeight = Storage.allocate(DType.FLOAT64, g.weightSize());

    Conv2dBatched.forward(x, weight, g, out, 2);
    Conv2dBatched.backwardData(gradOut, weight, g, gradInput, 2);
    Conv2dBatched.backwardWeight(gradOut, x, g, gradWeight, 2);
    Conv2dKernels.forward(Method.IM2COL, x, weight, null, g, expectedOut);
    Conv2dKernels.backwardData(Method.IM2COL, gradOut, weight, g, expectedGradInput);
    Conv2dKernels.backwardWeight(Method.IM2COL, gradOut, x, g, expectedGradWeight);

    assertAllClose(values(expectedOut), out, 1e-12, "float64 batched forward");
    assertAllClose(values(expectedGradInput), gradInput, 1e-12, "float64 batched backwardData");
    assertAllClose(values(expectedGradWeight), gradWeight, 1e-12, "float64 batched backwardWeight");
  }

  /**
   * Runs the batched method from the test thread, where {@link VectorGemm} splits each product
   * between the two threads, and from a pool worker, where nested kernels run serially: the weight
   * gradient and the other outputs must have the same bits, because the result must not depend on
   * the thread count.
   */
  @Test
  void batchedBitsIgnoreThreadCount() {
    assertEquals(2, CpuParallel.chunkCount(100), "set -Dkiln.threads=2 for the core tests");
    Conv2dGeometry g = new Conv2dGeometry(4, 64, 6, 6, 128, 3, 3, 1, 1, 1, 1, 1, 1);
    float[][] split = runAll(Method.BATCHED, g, 30);
    float[][][] serial = new float[1][][];
    CpuParallel.forEachChunk(
        2,
        (chunk, start, end) -> {
          if (chunk == 0) {
            serial[0] = runAll(Method.BATCHED, g, 30);
          }
        });

    assertArrayEquals(split[0], serial[0][0], "batched forward");
    assertArrayEquals(split[1], serial[0][1], "batched backwardData");
    assertArrayEquals(split[2], serial[0][2], "batched backwardWeight");
  }

  /**
   * Checks that the weight gradient of a large layer with few output channels and column rows goes
   * through the column matrix. With more column rows or more channels it keeps the implicit method.
   */
  @Test
  void weightGradientOfFewRowsUsesColumns() {
    Storage data = Storage.allocate(DType.FLOAT32, 1);
    Conv2dGeometry first = new Conv2dGeometry(2, 1, 224, 224, 32, 5, 5, 1, 1, 0, 0, 1, 1);
    Conv2dGeometry manyRows = new Conv2dGeometry(2, 32, 110, 110, 32, 3, 3, 1, 1, 0, 0, 1, 1);
    Conv2dGeometry manyChannels = new Conv2dGeometry(2, 1, 224, 224, 64, 5, 5, 1, 1, 0, 0, 1, 1);

    assertEquals(Method.IMPLICIT, Conv2dKernels.choose(Method.AUTO, data, first));
    assertEquals(Method.IM2COL, Conv2dKernels.chooseForWeightGradient(Method.AUTO, data, first));
    assertEquals(
        Method.IMPLICIT, Conv2dKernels.chooseForWeightGradient(Method.IMPLICIT, data, first));
    assertEquals(
        Method.IMPLICIT, Conv2dKernels.chooseForWeightGradient(Method.AUTO, data, manyRows));
    assertEquals(
        Method.IMPLICIT, Conv2dKernels.chooseForWeightGradient(Method.AUTO, data, manyChannels));
  }

  /**
   * A layer whose column matrix, 63 taps x 5998 x 5998 positions, has more elements than a Java
   * array holds, while its input and output fit. The weight-gradient rule must not trade the
   * implicit method for one that cannot store that matrix.
   */
  @Test
  void weightGradientOfHugeColumnsStaysImplicit() {
    Storage data = Storage.allocate(DType.FLOAT32, 1);
    Conv2dGeometry g = new Conv2dGeometry(1, 7, 6000, 6000, 32, 3, 3, 1, 1, 0, 0, 1, 1);

    assertTrue(
        (long) Conv2dIm2col.columnRows(g) * g.outHeight() * g.outWidth() > Integer.MAX_VALUE,
        "the column matrix must overflow an int");
    assertEquals(Method.IMPLICIT, Conv2dKernels.chooseForWeightGradient(Method.AUTO, data, g));
  }

  /**
   * The column matrix of 64 channels, a 3x3 kernel and 2048 x 2048 outputs has 576 x 4194304
   * elements, past Integer.MAX_VALUE. Both im2col methods reject it with the sizes before they
   * touch the operands, so small stand-in storages suffice.
   */
  @Test
  void im2colRejectsColumnMatrixOverInt() {
    Conv2dGeometry g = new Conv2dGeometry(1, 64, 2050, 2050, 1, 3, 3, 1, 1, 0, 0, 1, 1);
    Storage small = Storage.allocate(DType.FLOAT64, 1);
    String expected =
        "conv2d column matrix of 576 taps x 4194304 output positions has 2415919104 elements,"
            + " more than a Java array can hold (2147483647): use a smaller input image, fewer"
            + " input channels or a smaller kernel, or float32 with the jdk.incubator.vector"
            + " module, whose implicit-GEMM method stores no column matrix";

    IllegalArgumentException perImage =
        assertThrows(
            IllegalArgumentException.class,
            () -> Conv2dIm2col.forwardImage(small, 0, small, g, small));
    IllegalArgumentException batched =
        assertThrows(
            IllegalArgumentException.class, () -> Conv2dBatched.forward(small, small, g, small, 1));

    assertEquals(expected, perImage.getMessage());
    assertEquals(expected, batched.getMessage());
  }

  @Test
  void columnMatrixSizeMultipliesUpToIntMax() {
    assertEquals(576 * 1000, Conv2dIm2col.columnMatrixSize(576, 1000));
    assertEquals(Integer.MAX_VALUE, Conv2dIm2col.columnMatrixSize(Integer.MAX_VALUE, 1));
    assertThrows(
        IllegalArgumentException.class, () -> Conv2dIm2col.columnMatrixSize(1 << 16, 1 << 15));
  }

  /** The weight gradient of an empty batch is a sum over no images: zero, whatever the method. */
  @Test
  void backwardWeightOfEmptyBatchIsZero() {
    Conv2dGeometry g = new Conv2dGeometry(0, 2, 6, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1);
    for (DType dtype : DType.values()) {
      for (Method method : Method.values()) {
        if (method == Method.IMPLICIT && dtype != DType.FLOAT32) {
          continue;
        }
        Storage gradOut = Storage.allocate(dtype, 0);
        Storage x = Storage.allocate(dtype, 0);
        Storage gradWeight = nanStorage(dtype, g.weightSize());

        Conv2dKernels.backwardWeight(method, gradOut, x, g, gradWeight);

        assertArrayEquals(
            new double[g.weightSize()], values(gradWeight), 0.0, dtype + " " + method);
      }
    }
  }

  @Test
  void implicitRejectsFloat64() {
    Conv2dGeometry g = new Conv2dGeometry(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1);
    Storage x = Storage.allocate(DType.FLOAT64, g.inputSize());
    Storage weight = Storage.allocate(DType.FLOAT64, g.weightSize());
    Storage out = Storage.allocate(DType.FLOAT64, g.outputSize());

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Conv2dKernels.forward(Method.IMPLICIT, x, weight, null, g, out));

    assertTrue(error.getMessage().contains("float32 only"), error.getMessage());
  }

  /** Returns the forward output, the input gradient and the weight gradient of random operands. */
  private static float[][] runAll(Method method, Conv2dGeometry g, long seed) {
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), seed);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), seed + 1);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), seed + 2);
    Storage out = nanStorage(DType.FLOAT32, g.outputSize());
    Storage gradInput = nanStorage(DType.FLOAT32, g.inputSize());
    Storage gradWeight = nanStorage(DType.FLOAT32, g.weightSize());
    Conv2dKernels.forward(method, x, weight, null, g, out);
    Conv2dKernels.backwardData(method, gradOut, weight, g, gradInput);
    Conv2dKernels.backwardWeight(method, gradOut, x, g, gradWeight);
    return new float[][] {out.floats(), gradInput.floats(), gradWeight.floats()};
  }

  /** Returns a float64 copy of float32 storage, so the reference gets the same values. */
  private static Storage wide(Storage storage) {
    return Storage.wrap(values(storage));
  }
}
