package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.assertAllClose;
import static dev.kiln.core.backend.cpu.KernelAsserts.nanStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static dev.kiln.core.backend.cpu.KernelAsserts.tolerance;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

class Conv2dKernelsTest {

  /** batch, inC, H, W, outC, kH, kW, strideH, strideW, padH, padW, dilationH, dilationW. */
  private static final int[][] GEOMETRIES = {
    {1, 3, 7, 5, 4, 3, 3, 1, 1, 0, 0, 1, 1}, // plain 3x3
    {2, 3, 7, 5, 2, 3, 3, 2, 2, 1, 1, 1, 1}, // stride 2, padding 1
    {2, 3, 7, 5, 2, 3, 3, 1, 1, 2, 2, 1, 1}, // padding 2
    {1, 3, 7, 5, 2, 3, 3, 1, 1, 1, 1, 2, 2}, // dilation 2
    {2, 3, 7, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1}, // 1x1, where the image is the column matrix
    {2, 3, 7, 5, 2, 1, 1, 2, 2, 0, 0, 1, 1}, // 1x1 with stride 2
    {2, 3, 7, 5, 2, 5, 5, 2, 2, 2, 2, 1, 1}, // 5x5, stride 2, padding 2
    {1, 2, 6, 7, 3, 2, 3, 2, 1, 1, 0, 1, 2}, // different settings per axis
  };

  /** 2 images of 9 channels of 80 x 60 from a 1 x 1 kernel: an output of 86400 values. */
  private static final Conv2dGeometry LARGE_OUTPUT =
      new Conv2dGeometry(2, 1, 80, 60, 9, 1, 1, 1, 1, 0, 0, 1, 1);

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (DType dtype : DType.values()) {
      for (int[] v : GEOMETRIES) {
        Conv2dGeometry g =
            new Conv2dGeometry(
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]);
        cases.add(Arguments.of(dtype, g));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void forwardMatchesDirectConvolution(DType dtype, Conv2dGeometry g) {
    Storage x = randomStorage(dtype, g.inputSize(), 1);
    Storage weight = randomStorage(dtype, g.weightSize(), 2);
    Storage bias = randomStorage(dtype, g.outChannels(), 3);
    Storage out = nanStorage(dtype, g.outputSize());

    Conv2dKernels.forward(x, weight, bias, g, out);

    assertAllClose(directForward(x, weight, bias, g), out, tolerance(dtype), "out");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void forwardWithoutBiasMatchesDirect(DType dtype, Conv2dGeometry g) {
    Storage x = randomStorage(dtype, g.inputSize(), 4);
    Storage weight = randomStorage(dtype, g.weightSize(), 5);
    Storage out = nanStorage(dtype, g.outputSize());

    Conv2dKernels.forward(x, weight, null, g, out);

    assertAllClose(directForward(x, weight, null, g), out, tolerance(dtype), "out");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void backwardDataMatchesNaiveScatter(DType dtype, Conv2dGeometry g) {
    Storage gradOut = randomStorage(dtype, g.outputSize(), 6);
    Storage weight = randomStorage(dtype, g.weightSize(), 7);
    Storage gradInput = nanStorage(dtype, g.inputSize());

    Conv2dKernels.backwardData(gradOut, weight, g, gradInput);

    // Each output gradient flows through each tap to the input pixel that tap read.
    double[] expected = new double[g.inputSize()];
    forEachTap(
        g,
        (outIndex, inIndex, weightIndex) ->
            expected[inIndex] += gradOut.get(outIndex) * weight.get(weightIndex));
    assertAllClose(expected, gradInput, tolerance(dtype), "gradInput");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void backwardWeightMatchesNaiveSum(DType dtype, Conv2dGeometry g) {
    Storage gradOut = randomStorage(dtype, g.outputSize(), 8);
    Storage x = randomStorage(dtype, g.inputSize(), 9);
    Storage gradWeight = nanStorage(dtype, g.weightSize());

    Conv2dKernels.backwardWeight(gradOut, x, g, gradWeight);

    double[] expected = new double[g.weightSize()];
    forEachTap(
        g,
        (outIndex, inIndex, weightIndex) ->
            expected[weightIndex] += gradOut.get(outIndex) * x.get(inIndex));
    assertAllClose(expected, gradWeight, tolerance(dtype), "gradWeight");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void backwardBiasMatchesNaiveSum(DType dtype, Conv2dGeometry g) {
    Storage gradOut = randomStorage(dtype, g.outputSize(), 10);
    Storage gradBias = nanStorage(dtype, g.outChannels());

    Conv2dKernels.backwardBias(gradOut, g, gradBias);

    double[] expected = new double[g.outChannels()];
    int positions = g.outHeight() * g.outWidth();
    for (int i = 0; i < g.outputSize(); i++) {
      expected[(i / positions) % g.outChannels()] += gradOut.get(i);
    }
    assertAllClose(expected, gradBias, tolerance(dtype), "gradBias");
  }

  /**
   * An output above the pool's size limit, so the bias is added by the threads, one image each: 2
   * images of 9 channels of 80 x 60.
   */
  @Test
  void forwardOfLargeOutputAddsTheBias() {
    Conv2dGeometry g = LARGE_OUTPUT;
    assertTrue(g.outputSize() >= ElementwiseKernels.PARALLEL_MIN_ELEMENTS);
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 1);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), 2);
    Storage bias = randomStorage(DType.FLOAT32, g.outChannels(), 3);
    Storage out = nanStorage(DType.FLOAT32, g.outputSize());

    Conv2dKernels.forward(x, weight, bias, g, out);

    assertAllClose(directForward(x, weight, bias, g), out, tolerance(DType.FLOAT32), "out");
  }

  /**
   * An output gradient above the pool's size limit, so the channels are split over the threads,
   * with an odd channel count for an uneven split.
   */
  @Test
  void backwardBiasOfLargeOutputMatchesNaiveSum() {
    Conv2dGeometry g = LARGE_OUTPUT;
    assertTrue(g.outputSize() >= ElementwiseKernels.PARALLEL_MIN_ELEMENTS);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 10);
    Storage gradBias = nanStorage(DType.FLOAT32, g.outChannels());

    Conv2dKernels.backwardBias(gradOut, g, gradBias);

    double[] expected = new double[g.outChannels()];
    int positions = g.outHeight() * g.outWidth();
    for (int i = 0; i < g.outputSize(); i++) {
      expected[(i / positions) % g.outChannels()] += gradOut.get(i);
    }
    assertAllClose(expected, gradBias, tolerance(DType.FLOAT32), "gradBias");
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void col2imIsAdjointOfIm2col(DType dtype, Conv2dGeometry g) {
    int imageSize = g.inChannels() * g.inHeight() * g.inWidth();
    int colSize =
        g.inChannels() * g.kernelHeight() * g.kernelWidth() * g.outHeight() * g.outWidth();
    Storage image = randomStorage(dtype, imageSize, 11);
    Storage col = randomStorage(dtype, colSize, 12);
    Storage imageOfCol = nanStorage(dtype, imageSize);
    Storage colOfImage = nanStorage(dtype, colSize);

    Conv2dKernels.im2col(image, 0, g, colOfImage);
    Conv2dKernels.col2im(col, g, imageOfCol, 0);

    // <im2col(image), col> = <image, col2im(col)> holds for a pair of adjoint linear maps.
    double left = 0;
    for (int i = 0; i < colSize; i++) {
      left += colOfImage.get(i) * col.get(i);
    }
    double right = 0;
    for (int i = 0; i < imageSize; i++) {
      right += image.get(i) * imageOfCol.get(i);
    }
    assertAllClose(new double[] {left}, new double[] {right}, tolerance(dtype), "inner product");
  }

  @Test
  void forwardWrongInputSizeRejected() {
    Conv2dGeometry g = new Conv2dGeometry(1, 3, 7, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1);
    Storage x = Storage.allocate(DType.FLOAT32, 10);
    Storage weight = Storage.allocate(DType.FLOAT32, g.weightSize());
    Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> Conv2dKernels.forward(x, weight, null, g, out));
    assertEquals(
        "conv2d input has 10 elements but the geometry expects 105: check the shapes against the"
            + " Conv2dGeometry",
        error.getMessage());
  }

  @Test
  void forwardMixedDtypesRejected() {
    Conv2dGeometry g = new Conv2dGeometry(1, 3, 7, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1);
    Storage x = Storage.allocate(DType.FLOAT32, g.inputSize());
    Storage weight = Storage.allocate(DType.FLOAT64, g.weightSize());
    Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> Conv2dKernels.forward(x, weight, null, g, out));
    assertEquals(
        "conv2d operands must share one dtype, got float32, float64 and float32",
        error.getMessage());
  }

  /** Direct 7-nested-loop convolution in float64 on the values the kernel saw. */
  private static double[] directForward(Storage x, Storage weight, Storage bias, Conv2dGeometry g) {
    double[] out = new double[g.outputSize()];
    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int b = 0; b < g.batch(); b++) {
      for (int oc = 0; oc < g.outChannels(); oc++) {
        for (int oy = 0; oy < outHeight; oy++) {
          for (int ox = 0; ox < outWidth; ox++) {
            double sum = bias == null ? 0 : bias.get(oc);
            for (int ic = 0; ic < g.inChannels(); ic++) {
              for (int ky = 0; ky < g.kernelHeight(); ky++) {
                for (int kx = 0; kx < g.kernelWidth(); kx++) {
                  int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
                  int ix = ox * g.strideWidth() - g.padWidth() + kx * g.dilationWidth();
                  if (iy < 0 || iy >= g.inHeight() || ix < 0 || ix >= g.inWidth()) {
                    continue;
                  }
                  double xv =
                      x.get(((b * g.inChannels() + ic) * g.inHeight() + iy) * g.inWidth() + ix);
                  double wv =
                      weight.get(
                          ((oc * g.inChannels() + ic) * g.kernelHeight() + ky) * g.kernelWidth()
                              + kx);
                  sum += xv * wv;
                }
              }
            }
            out[((b * g.outChannels() + oc) * outHeight + oy) * outWidth + ox] = sum;
          }
        }
      }
    }
    return out;
  }

  /** Flat indices of one (output element, input pixel, weight) triple that meet in the sum. */
  private interface TapVisitor {
    void visit(int outIndex, int inIndex, int weightIndex);
  }

  /** Visits every product term of the direct convolution that does not fall in the padding. */
  private static void forEachTap(Conv2dGeometry g, TapVisitor visitor) {
    int outHeight = g.outHeight();
    int outWidth = g.outWidth();
    for (int b = 0; b < g.batch(); b++) {
      for (int oc = 0; oc < g.outChannels(); oc++) {
        for (int oy = 0; oy < outHeight; oy++) {
          for (int ox = 0; ox < outWidth; ox++) {
            int outIndex = ((b * g.outChannels() + oc) * outHeight + oy) * outWidth + ox;
            for (int ic = 0; ic < g.inChannels(); ic++) {
              for (int ky = 0; ky < g.kernelHeight(); ky++) {
                for (int kx = 0; kx < g.kernelWidth(); kx++) {
                  int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
                  int ix = ox * g.strideWidth() - g.padWidth() + kx * g.dilationWidth();
                  if (iy < 0 || iy >= g.inHeight() || ix < 0 || ix >= g.inWidth()) {
                    continue;
                  }
                  int inIndex = ((b * g.inChannels() + ic) * g.inHeight() + iy) * g.inWidth() + ix;
                  int weightIndex =
                      ((oc * g.inChannels() + ic) * g.kernelHeight() + ky) * g.kernelWidth() + kx;
                  visitor.visit(outIndex, inIndex, weightIndex);
                }
              }
            }
          }
        }
      }
    }
  }
}
