package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of conv.cu under CPU emulation and compares them with a double-precision
 * reference. The reference walks forward from each output position and tap to the input pixel it
 * reads, whereas col2im and the backward kernels invert that mapping, so an error in the inversion
 * cannot cancel out.
 */
class ConvKernelsTest {

  /**
   * Relative tolerance of float32 sums, scaled by the largest expected magnitude (at least 1): each
   * output adds at most a few hundred products of N(0, 1) values in float. Under emulation the
   * errors stayed below 3e-7, and the margin covers the GPU's fused multiply-adds and other
   * summation orders.
   */
  private static final double SUM_TOLERANCE = 1e-5;

  /** Threads per block for the elementwise kernels: odd sizes leave the last block part-full. */
  private static final int BLOCK = 128;

  /** Threads per block for the reducing kernels, which need a multiple of 32. */
  private static final int REDUCTION_BLOCK = 64;

  private static EmulatedKernels kernels;

  @BeforeAll
  static void loadKernels() {
    kernels = KernelTestSupport.kernels();
  }

  /** One convolution geometry; sizes and names as in conv.cu. */
  record ConvCase(
      int batch,
      int inChannels,
      int inHeight,
      int inWidth,
      int outChannels,
      int kernelHeight,
      int kernelWidth,
      int strideHeight,
      int strideWidth,
      int padHeight,
      int padWidth,
      int dilationHeight,
      int dilationWidth) {

    int outHeight() {
      return (inHeight + 2 * padHeight - dilationHeight * (kernelHeight - 1) - 1) / strideHeight
          + 1;
    }

    int outWidth() {
      return (inWidth + 2 * padWidth - dilationWidth * (kernelWidth - 1) - 1) / strideWidth + 1;
    }

    int positions() {
      return outHeight() * outWidth();
    }

    int taps() {
      return inChannels * kernelHeight * kernelWidth;
    }

    int inputSize() {
      return batch * inChannels * inHeight * inWidth;
    }

    int weightSize() {
      return outChannels * taps();
    }

    int outputSize() {
      return batch * outChannels * positions();
    }

    int columnSize() {
      return batch * taps() * positions();
    }

    /** Returns the int parameters of the direct kernels, which follow their pointers. */
    Object[] convolutionArgs() {
      return new Object[] {
        batch,
        inChannels,
        inHeight,
        inWidth,
        outChannels,
        kernelHeight,
        kernelWidth,
        strideHeight,
        strideWidth,
        padHeight,
        padWidth,
        dilationHeight,
        dilationWidth
      };
    }

    /** Returns the int parameters of im2col and col2im, which have no outChannels. */
    Object[] imageArgs() {
      return new Object[] {
        batch,
        inChannels,
        inHeight,
        inWidth,
        kernelHeight,
        kernelWidth,
        strideHeight,
        strideWidth,
        padHeight,
        padWidth,
        dilationHeight,
        dilationWidth
      };
    }
  }

  /** Receives one tap that lands inside the input; indexes are flat NCHW or column indexes. */
  private interface TapVisitor {
    void visit(int b, int ic, int tap, int position, int inputIndex, int columnIndex);
  }

  static Stream<ConvCase> cases() {
    return Stream.of(
        // batch 1, 3x3, padding 1, stride 1
        new ConvCase(1, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1),
        // batch 3, stride 2 on both axes, asymmetric kernel and padding
        new ConvCase(3, 2, 9, 7, 5, 3, 2, 2, 2, 1, 0, 1, 1),
        // dilation 2 with padding 2, stride 2 on one axis only
        new ConvCase(3, 3, 8, 9, 2, 3, 3, 2, 1, 2, 2, 2, 2),
        // different stride, padding and dilation per axis
        new ConvCase(1, 2, 6, 11, 3, 2, 3, 1, 2, 1, 2, 2, 1),
        // 1x1 kernel, where the column matrix is the image
        new ConvCase(3, 5, 5, 6, 3, 1, 1, 1, 1, 0, 0, 1, 1),
        // 5x5 kernel with stride 2 and padding 2, and 7 output channels
        new ConvCase(1, 1, 7, 9, 7, 5, 5, 2, 2, 2, 2, 1, 1));
  }

  /** Calls visitor for every tap of every output position that reads an input element. */
  private static void forEachTap(ConvCase g, TapVisitor visitor) {
    for (int b = 0; b < g.batch(); b++) {
      for (int ic = 0; ic < g.inChannels(); ic++) {
        for (int ky = 0; ky < g.kernelHeight(); ky++) {
          for (int kx = 0; kx < g.kernelWidth(); kx++) {
            int tap = (ic * g.kernelHeight() + ky) * g.kernelWidth() + kx;
            for (int oy = 0; oy < g.outHeight(); oy++) {
              for (int ox = 0; ox < g.outWidth(); ox++) {
                int iy = oy * g.strideHeight() - g.padHeight() + ky * g.dilationHeight();
                int ix = ox * g.strideWidth() - g.padWidth() + kx * g.dilationWidth();
                if (iy < 0 || iy >= g.inHeight() || ix < 0 || ix >= g.inWidth()) {
                  continue;
                }
                int position = oy * g.outWidth() + ox;
                int inputIndex = ((b * g.inChannels() + ic) * g.inHeight() + iy) * g.inWidth() + ix;
                int columnIndex = (b * g.taps() + tap) * g.positions() + position;
                visitor.visit(b, ic, tap, position, inputIndex, columnIndex);
              }
            }
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void im2colCopiesEveryTap(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(g.inputSize());
      MemorySegment column = support.filled(g.columnSize(), Float.NaN);

      launchElementwise(
          "kiln_conv_im2col", g.columnSize(), concat(g.imageArgs(), support.segmentOf(x), column));

      float[] expected = new float[g.columnSize()];
      forEachTap(g, (b, ic, tap, position, in, col) -> expected[col] = x[in]);
      // A copy involves no arithmetic, so the match is exact, zeros of the padding included.
      assertArrayEquals(expected, floats(column), "column matrix of " + g);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void col2imGathersEveryTap(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] column = support.gaussianFloats(g.columnSize());
      MemorySegment image = support.filled(g.inputSize(), Float.NaN);

      launchElementwise(
          "kiln_conv_col2im",
          g.inputSize(),
          concat(g.imageArgs(), support.segmentOf(column), image));

      double[] expected = new double[g.inputSize()];
      forEachTap(g, (b, ic, tap, position, in, col) -> expected[in] += column[col]);
      assertClose(expected, floats(image), "col2im image of " + g);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void forwardDirectMatchesReference(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(g.inputSize());
      float[] weight = support.gaussianFloats(g.weightSize());
      float[] bias = support.gaussianFloats(g.outChannels());
      MemorySegment withBias = support.filled(g.outputSize(), Float.NaN);
      MemorySegment withoutBias = support.filled(g.outputSize(), Float.NaN);
      MemorySegment xSegment = support.segmentOf(x);
      MemorySegment weightSegment = support.segmentOf(weight);

      launchElementwise(
          "kiln_conv_forward_direct",
          g.outputSize(),
          concat(g.convolutionArgs(), xSegment, weightSegment, support.segmentOf(bias), withBias));
      launchElementwise(
          "kiln_conv_forward_direct",
          g.outputSize(),
          concat(g.convolutionArgs(), xSegment, weightSegment, MemorySegment.NULL, withoutBias));

      double[] expected = referenceForward(g, x, weight);
      assertClose(expected, floats(withoutBias), "output without bias of " + g);
      for (int i = 0; i < expected.length; i++) {
        expected[i] += bias[i / g.positions() % g.outChannels()];
      }
      assertClose(expected, floats(withBias), "output with bias of " + g);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void backwardDataDirectMatchesReference(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] gradY = support.gaussianFloats(g.outputSize());
      float[] weight = support.gaussianFloats(g.weightSize());
      MemorySegment gradX = support.filled(g.inputSize(), Float.NaN);

      launchElementwise(
          "kiln_conv_backward_data_direct",
          g.inputSize(),
          concat(g.convolutionArgs(), support.segmentOf(gradY), support.segmentOf(weight), gradX));

      assertClose(referenceBackwardData(g, gradY, weight), floats(gradX), "gradX of " + g);
    }
  }

  /**
   * Runs the whole im2col route with the batched products of matmul.cu, one launch each, as conv.cu
   * describes: forward and input gradient with kiln_matmul_tiled over the batch and the weight
   * shared (stride 0), the input gradient then through col2im, and the weight gradient as one sum
   * of per-image products with kiln_matmul_tiled_slices and kiln_matmul_sum_slices.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void im2colRouteMatchesReference(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(g.inputSize());
      float[] weight = support.gaussianFloats(g.weightSize());
      float[] gradY = support.gaussianFloats(g.outputSize());
      MemorySegment weightSegment = support.segmentOf(weight);
      MemorySegment gradYSegment = support.segmentOf(gradY);
      MemorySegment column = support.filled(g.columnSize(), Float.NaN);
      MemorySegment gradColumn = support.filled(g.columnSize(), Float.NaN);
      MemorySegment y = support.filled(g.outputSize(), Float.NaN);
      MemorySegment gradX = support.filled(g.inputSize(), Float.NaN);
      MemorySegment gradW = support.filled(g.weightSize(), Float.NaN);
      long columnStride = (long) g.taps() * g.positions();
      long outputStride = (long) g.outChannels() * g.positions();

      launchElementwise(
          "kiln_conv_im2col", g.columnSize(), concat(g.imageArgs(), support.segmentOf(x), column));
      // y[b] = weight * column[b]
      batchedMatmul(
          weightSegment,
          0,
          column,
          columnStride,
          y,
          outputStride,
          g.outChannels(),
          g.positions(),
          g.taps(),
          0,
          g.batch());
      // gradColumn[b] = weight^T * gradY[b]
      batchedMatmul(
          weightSegment,
          0,
          gradYSegment,
          outputStride,
          gradColumn,
          columnStride,
          g.taps(),
          g.positions(),
          g.outChannels(),
          1,
          g.batch());
      launchElementwise(
          "kiln_conv_col2im", g.inputSize(), concat(g.imageArgs(), gradColumn, gradX));
      // gradW = the sum over b of gradY[b] * column[b]^T, in slices of 16 steps, so that slices
      // end inside an image's positions and the partial sums cross from one image to the next.
      int sliceDepth = 16;
      int slices = Dim3.blocksFor(g.batch() * g.positions(), sliceDepth);
      MemorySegment partial = support.filled(slices * g.weightSize(), Float.NaN);
      kernels.launch(
          "kiln_matmul_tiled_slices",
          new Dim3(Dim3.blocksFor(g.taps(), 64), Dim3.blocksFor(g.outChannels(), 64), slices),
          Dim3.of(16, 16),
          0,
          gradYSegment,
          column,
          partial,
          g.outChannels(),
          g.taps(),
          g.positions(),
          0,
          1,
          sliceDepth,
          g.batch(),
          outputStride,
          columnStride);
      kernels.launch(
          "kiln_matmul_sum_slices",
          Dim3.of(2),
          Dim3.of(64),
          0,
          partial,
          gradW,
          g.outChannels(),
          g.taps(),
          slices,
          0);

      assertClose(referenceForward(g, x, weight), floats(y), "im2col route output of " + g);
      assertClose(
          referenceBackwardData(g, gradY, weight), floats(gradX), "im2col route gradX of " + g);
      assertClose(
          referenceBackwardWeight(g, gradY, x), floats(gradW), "im2col route gradW of " + g);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void backwardWeightDirectMatchesReference(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] gradY = support.gaussianFloats(g.outputSize());
      float[] x = support.gaussianFloats(g.inputSize());
      MemorySegment gradYSegment = support.segmentOf(gradY);
      MemorySegment xSegment = support.segmentOf(x);
      MemorySegment oneBlockPerWeight = support.filled(g.weightSize(), Float.NaN);
      MemorySegment fewBlocks = support.filled(g.weightSize(), Float.NaN);

      kernels.launch(
          "kiln_conv_backward_weight_direct",
          Dim3.of(g.weightSize()),
          Dim3.of(REDUCTION_BLOCK),
          0,
          concat(g.convolutionArgs(), gradYSegment, xSegment, oneBlockPerWeight));
      // Three blocks stride over all the weights, so each block handles several of them.
      kernels.launch(
          "kiln_conv_backward_weight_direct",
          Dim3.of(3),
          Dim3.of(REDUCTION_BLOCK),
          0,
          concat(g.convolutionArgs(), gradYSegment, xSegment, fewBlocks));

      assertClose(referenceBackwardWeight(g, gradY, x), floats(oneBlockPerWeight), "gradW of " + g);
      // The block's reduction tree is fixed, so the grid size cannot change a single bit.
      assertArrayEquals(floats(oneBlockPerWeight), floats(fewBlocks), "gradW with 3 blocks");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void backwardBiasSumsEachChannel(ConvCase g) {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] gradY = support.gaussianFloats(g.outputSize());
      MemorySegment gradBias = support.filled(g.outChannels(), Float.NaN);

      kernels.launch(
          "kiln_conv_backward_bias",
          Dim3.of(g.outChannels()),
          Dim3.of(REDUCTION_BLOCK),
          0,
          support.segmentOf(gradY),
          gradBias,
          g.batch(),
          g.outChannels(),
          g.positions());

      double[] expected = new double[g.outChannels()];
      for (int i = 0; i < gradY.length; i++) {
        expected[i / g.positions() % g.outChannels()] += gradY[i];
      }
      assertClose(expected, floats(gradBias), "gradBias of " + g);
    }
  }

  private static double[] referenceForward(ConvCase g, float[] x, float[] weight) {
    double[] y = new double[g.outputSize()];
    forEachTap(
        g,
        (b, ic, tap, position, in, col) -> {
          for (int oc = 0; oc < g.outChannels(); oc++) {
            y[(b * g.outChannels() + oc) * g.positions() + position] +=
                (double) weight[oc * g.taps() + tap] * x[in];
          }
        });
    return y;
  }

  private static double[] referenceBackwardData(ConvCase g, float[] gradY, float[] weight) {
    double[] gradX = new double[g.inputSize()];
    forEachTap(
        g,
        (b, ic, tap, position, in, col) -> {
          for (int oc = 0; oc < g.outChannels(); oc++) {
            gradX[in] +=
                (double) weight[oc * g.taps() + tap]
                    * gradY[(b * g.outChannels() + oc) * g.positions() + position];
          }
        });
    return gradX;
  }

  private static double[] referenceBackwardWeight(ConvCase g, float[] gradY, float[] x) {
    double[] gradW = new double[g.weightSize()];
    forEachTap(
        g,
        (b, ic, tap, position, in, col) -> {
          for (int oc = 0; oc < g.outChannels(); oc++) {
            gradW[oc * g.taps() + tap] +=
                (double) gradY[(b * g.outChannels() + oc) * g.positions() + position] * x[in];
          }
        });
    return gradW;
  }

  /**
   * Launches kiln_matmul_tiled for c[i] = op(a[i]) * b[i], i below {@code batches}, with op(a[i]) m
   * x k and b[i] k x n, on its documented shape: blocks of 16 x 16 threads, each computing a 64 x
   * 64 tile of one product. Matrix i of each operand starts {@code i * stride} floats after the
   * segment's start.
   */
  private static void batchedMatmul(
      MemorySegment a,
      long strideA,
      MemorySegment b,
      long strideB,
      MemorySegment c,
      long strideC,
      int m,
      int n,
      int k,
      int transA,
      int batches) {
    kernels.launch(
        "kiln_matmul_tiled",
        new Dim3(Dim3.blocksFor(n, 64), Dim3.blocksFor(m, 64), batches),
        Dim3.of(16, 16),
        0,
        a,
        b,
        c,
        m,
        n,
        k,
        transA,
        0,
        0,
        batches,
        strideA,
        strideB,
        strideC);
  }

  /** Launches a grid-stride kernel with one thread per element, the last block part-full. */
  private static void launchElementwise(String kernel, int elements, Object[] args) {
    kernels.launch(kernel, Dim3.of(Dim3.blocksFor(elements, BLOCK)), Dim3.of(BLOCK), 0, args);
  }

  /** Returns the pointers followed by the int parameters, in the order of every conv.cu kernel. */
  private static Object[] concat(Object[] sizes, Object... pointers) {
    Object[] args = Arrays.copyOf(pointers, pointers.length + sizes.length);
    System.arraycopy(sizes, 0, args, pointers.length, sizes.length);
    return args;
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
