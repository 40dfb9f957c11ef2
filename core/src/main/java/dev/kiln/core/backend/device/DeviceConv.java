package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceRuntime.slice;
import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.ops.BinaryOp;
import dev.kiln.kernels.Dim3;
import java.util.Optional;

/**
 * Launches 2d convolution (cross-correlation, as in PyTorch, with groups = 1) on NCHW data, with
 * the kernels of {@code conv.cu} and the products of {@link DeviceMatmul}. Shapes follow {@link
 * Conv2dGeometry}, exactly as the CPU's {@code Conv2dKernels} take them.
 *
 * <h2>Three routes</h2>
 *
 * <p>{@link Route#IM2COL} copies each image's receptive fields into a column matrix [taps,
 * positions] (taps = inChannels * kernelHeight * kernelWidth, positions = outHeight * outWidth),
 * which turns the convolution into matrix products, at the price of a scratch buffer. {@link
 * DeviceMatmul} runs the products in cuBLAS where that library loaded, even without cuDNN.
 * Elsewhere kiln's tiled GEMM runs them, reusing each value that it stages in shared memory 64 or
 * 128 times. {@link Route#DIRECT} runs one thread per output value (one block per weight element
 * for the weight gradient) and rereads the input from global memory: no scratch memory and fewer
 * launches, but far more memory traffic. It is the simple version to check the other against, and
 * only tests use it. NOTE: that im2col is the faster of the two on a GPU is reasoned from memory
 * traffic, not measured.
 *
 * <p>{@link Route#CUDNN} hands the convolution to cuDNN, where the launcher was built with a {@link
 * VendorDnn}. The binding takes cuDNN's heuristic choice of algorithm once per shape and direction
 * ({@code cudnnGetConvolution*Algorithm_v7}, which times nothing), and the workspace comes from
 * kiln's allocator. {@link #preferredRoute()} names the route to use: cuDNN where it loaded, else
 * im2col.
 *
 * <h2>Groups of images</h2>
 *
 * <p>The im2col route works through the batch in groups of images. To bound the scratch buffer, a
 * group has at most {@link #COLUMN_LIMIT_FLOATS} column entries (at least one image). Its column
 * matrices lie one after another, [images, taps, positions], built by one im2col launch, and each
 * direction makes one product call per group, with the images along the batch axis of the product:
 *
 * <ul>
 *   <li>forward: y[b] = weight [outChannels, taps] * column[b], one batched product in which every
 *       image reads the weight (stride 0). Image b's result [outChannels, positions] is its slice
 *       of the NCHW output, so no copy follows.
 *   <li>input gradient: gradColumn[b] = weight^T * gradY[b], one batched product, then one col2im.
 *   <li>weight gradient: gradW = the sum over the group's images of gradY[b] * column[b]^T, one
 *       {@link DeviceBatchReduce} call, which adds to gradW after the first group.
 * </ul>
 *
 * <p>Without cuBLAS, a group therefore costs two launches forward (im2col and the product), two for
 * the input gradient (product and col2im), and two or three for the weight gradient (im2col, then
 * the sliced product and the sum of its slices, or the sliced product alone where one slice covers
 * the group and gradW is only written). A group of one image makes a single product instead of a
 * batch, and {@link DeviceMatmul} may cut a single product into slices of k: its forward and
 * input-gradient products then take two launches each. With cuBLAS, each product is one library
 * call, and for a group of two or more images the weight gradient adds one launch that sums the
 * images' products.
 *
 * <p>The weight gradient is a sum over the group's images and positions, but no single product
 * covers it: gradY is [images, outChannels, positions] and the columns [images, taps, positions],
 * so in neither are the group's positions one run of k without a transposing copy. A product per
 * image accumulating into gradW costs one launch per image. kiln's batch-reduce GEMM instead takes
 * the images' positions as one long k in slices, and each slice writes a partial gradW. Those take
 * less than two waves of 64 x 64 tiles, 17 MB on an H200, or one gradW where gradW alone has a wave
 * of tiles. With cuBLAS, one strided batched call writes a partial gradW per image, images *
 * outChannels * taps floats, at most 256 MiB per call.
 *
 * <p>Results. On kiln's kernels, the batched forward and input-gradient products sum over taps or
 * outChannels in the same order as one product per image would, so grouping the images does not
 * change their values. The exception is a single product that the default product cuts into slices
 * of k, a C of few tiles with k of 1024 or more, which happens only in a group of one image. A
 * batch of two or more is never cut, so its sums run in one piece and may differ from the sliced
 * product in the last bits. The weight gradient of a group of two or more images is summed by
 * slices of the group's positions instead of image by image, which may also change the last bits.
 */
public final class DeviceConv {

  /** The ways to compute a convolution, described in the class comment. */
  public enum Route {
    /** im2col (or col2im) plus one batched matrix product per group of images. */
    IM2COL,
    /** The direct kernels, one thread or block per output value. */
    DIRECT,
    /** cuDNN's convolution calls; only on a launcher built with a {@link VendorDnn}. */
    CUDNN
  }

  /** Most column-matrix entries (floats) held at once: 64 Mi, which is 256 MiB. */
  static final long COLUMN_LIMIT_FLOATS = 64L << 20;

  private final DeviceRuntime runtime;
  private final DeviceMatmul matmul;
  private final DeviceBatchReduce batchReduce;
  private final DeviceElementwise elementwise;
  private final VendorDnn dnn;
  private final long columnLimitFloats;

  /** Creates the launcher for one device, which runs kiln's own kernels. */
  public DeviceConv(DeviceRuntime runtime) {
    this(runtime, new DeviceMatmul(runtime), null);
  }

  /**
   * Creates the launcher for one device whose im2col route multiplies with {@code matmul} and whose
   * {@link Route#CUDNN} route calls {@code dnn}, which may be null where cuDNN is absent.
   */
  public DeviceConv(DeviceRuntime runtime, DeviceMatmul matmul, VendorDnn dnn) {
    this(runtime, matmul, dnn, COLUMN_LIMIT_FLOATS);
  }

  /** As the public constructor, with another bound on the column entries of a group, for tests. */
  DeviceConv(DeviceRuntime runtime, DeviceMatmul matmul, VendorDnn dnn, long columnLimitFloats) {
    this.runtime = runtime;
    this.matmul = matmul;
    this.batchReduce = new DeviceBatchReduce(runtime, matmul);
    this.elementwise = new DeviceElementwise(runtime);
    this.dnn = dnn;
    this.columnLimitFloats = columnLimitFloats;
  }

  /** Returns {@link Route#CUDNN} where this launcher has cuDNN, else {@link Route#IM2COL}. */
  public Route preferredRoute() {
    return dnn != null ? Route.CUDNN : Route.IM2COL;
  }

  /**
   * Computes y = conv(x, weight) + bias, overwriting y, as {@code Conv2dKernels.forward}. {@code
   * bias} may be null.
   *
   * <p>{@link Route#IM2COL}: per group of images, one {@code kiln_conv_im2col}, then one batched
   * {@link DeviceMatmul} product with y[b] = weight [outChannels, taps] * column[b] [taps,
   * positions] for every image b of the group. Finally the bias is added by one {@code
   * kiln_elementwise_binary_broadcast}, y [batch, outChannels, positions] + bias [1, outChannels,
   * 1], because the GEMM has no bias term. {@link Route#DIRECT}: one {@code
   * kiln_conv_forward_direct}, which adds the bias itself.
   */
  public void forward(
      Route route,
      DeviceBuffer x,
      DeviceBuffer weight,
      DeviceBuffer bias,
      Conv2dGeometry g,
      DeviceBuffer y) {
    requireFloats("conv input", x, g.inputSize());
    requireFloats("conv weight", weight, g.weightSize());
    requireOptional("conv bias", bias, g.outChannels());
    requireFloats("conv output", y, g.outputSize());
    if (route == Route.CUDNN) {
      cudnn().convolutionForward(g, x.address(), weight.address(), y.address());
      DeviceRuntime.keepReachable(x, weight, y);
      addBias(y, bias, g);
      return;
    }
    if (route == Route.DIRECT) {
      Dim3 block = blockFor(g.outputSize());
      runtime.launch(
          "kiln_conv_forward_direct",
          gridFor(g.outputSize(), block),
          block,
          0,
          directArgs(g, x, weight, Optional.ofNullable(bias), y));
      return;
    }

    int taps = taps(g);
    int positions = positions(g);
    long columnSize = (long) taps * positions;
    int groupSize = imagesPerGroup(g);
    DeviceBuffer column = runtime.allocateFloats(groupSize * columnSize);
    try {
      for (int first = 0; first < g.batch(); first += groupSize) {
        int images = Math.min(groupSize, g.batch() - first);
        im2col(x, first, images, column, g);
        matmul.batchedGemm(
            false,
            false,
            g.outChannels(),
            positions,
            taps,
            images,
            weight,
            0,
            column,
            columnSize,
            outputImages(y, first, images, g),
            outputSize(g),
            false);
      }
    } finally {
      runtime.free(column);
    }
    addBias(y, bias, g);
    // The launches above got slices of x and y, which do not keep the buffers themselves reachable.
    DeviceRuntime.keepReachable(x, weight, y);
  }

  /** Adds bias [outChannels] to every position of y, unless the bias is null. */
  private void addBias(DeviceBuffer y, DeviceBuffer bias, Conv2dGeometry g) {
    if (bias != null) {
      int[] shape = {g.batch(), g.outChannels(), positions(g)};
      elementwise.binaryBroadcast(
          BinaryOp.ADD, y, shape, bias, new int[] {1, g.outChannels(), 1}, y, shape);
    }
  }

  private VendorDnn cudnn() {
    if (dnn == null) {
      throw new IllegalStateException(
          "the CUDNN route needs cuDNN, which this device's launcher does not have: use"
              + " preferredRoute()");
    }
    return dnn;
  }

  /**
   * Computes the input gradient gradX from gradY, overwriting gradX, as {@code
   * Conv2dKernels.backwardData}.
   *
   * <p>{@link Route#IM2COL}: per group of images, one batched {@link DeviceMatmul} product with
   * gradColumn[b] = weight^T * gradY[b] (m = taps, n = positions, k = outChannels) for every image
   * b of the group, then one {@code kiln_conv_col2im}, which gathers every column entry back onto
   * the pixel it came from without atomics. {@link Route#DIRECT}: one {@code
   * kiln_conv_backward_data_direct}, one thread per input pixel.
   */
  public void backwardData(
      Route route, DeviceBuffer gradY, DeviceBuffer weight, Conv2dGeometry g, DeviceBuffer gradX) {
    requireFloats("conv output gradient", gradY, g.outputSize());
    requireFloats("conv weight", weight, g.weightSize());
    requireFloats("conv input gradient", gradX, g.inputSize());
    if (route == Route.CUDNN) {
      cudnn().convolutionBackwardData(g, weight.address(), gradY.address(), gradX.address(), false);
      DeviceRuntime.keepReachable(weight, gradY, gradX);
      return;
    }
    if (route == Route.DIRECT) {
      Dim3 block = blockFor(g.inputSize());
      runtime.launch(
          "kiln_conv_backward_data_direct",
          gridFor(g.inputSize(), block),
          block,
          0,
          directArgs(g, gradY, weight, gradX));
      return;
    }

    int taps = taps(g);
    int positions = positions(g);
    long columnSize = (long) taps * positions;
    int groupSize = imagesPerGroup(g);
    DeviceBuffer gradColumn = runtime.allocateFloats(groupSize * columnSize);
    try {
      for (int first = 0; first < g.batch(); first += groupSize) {
        int images = Math.min(groupSize, g.batch() - first);
        matmul.batchedGemm(
            true,
            false,
            taps,
            positions,
            g.outChannels(),
            images,
            weight,
            0,
            outputImages(gradY, first, images, g),
            outputSize(g),
            gradColumn,
            columnSize,
            false);
        long imageSize = (long) g.inChannels() * g.inHeight() * g.inWidth();
        DeviceBuffer imageSlice = slice(gradX, first * imageSize, images * imageSize);
        Dim3 block = blockFor(images * imageSize);
        runtime.launch(
            "kiln_conv_col2im",
            gridFor(images * imageSize, block),
            block,
            0,
            columnArgs(gradColumn, imageSlice, images, g));
      }
    } finally {
      runtime.free(gradColumn);
    }
    DeviceRuntime.keepReachable(gradY, weight, gradX);
  }

  /**
   * Computes the weight gradient gradW from gradY and the input x, overwriting gradW, as {@code
   * Conv2dKernels.backwardWeight}.
   *
   * <p>{@link Route#IM2COL}: per group one {@code kiln_conv_im2col} of x, then one {@link
   * DeviceBatchReduce} call for gradW = the sum over the group's images b of gradY[b] * column[b]^T
   * (m = outChannels, n = taps, k = positions per image), which overwrites gradW for the first
   * group and adds to it after that. The class comment gives its launches and scratch memory.
   * {@link Route#DIRECT}: one {@code kiln_conv_backward_weight_direct}, one block per weight
   * element whose threads split the batch * positions terms and add them in a fixed tree.
   */
  public void backwardWeight(
      Route route, DeviceBuffer gradY, DeviceBuffer x, Conv2dGeometry g, DeviceBuffer gradW) {
    requireFloats("conv output gradient", gradY, g.outputSize());
    requireFloats("conv input", x, g.inputSize());
    requireFloats("conv weight gradient", gradW, g.weightSize());
    int positions = positions(g);
    if (route == Route.CUDNN) {
      cudnn().convolutionBackwardFilter(g, x.address(), gradY.address(), gradW.address(), false);
      DeviceRuntime.keepReachable(x, gradY, gradW);
      return;
    }
    if (route == Route.DIRECT) {
      runtime.launch(
          "kiln_conv_backward_weight_direct",
          Dim3.of(g.weightSize()),
          blockFor((long) g.batch() * positions),
          0,
          directArgs(g, gradY, x, gradW));
      return;
    }

    int taps = taps(g);
    if (g.batch() == 0) {
      // A sum over no images is zero, as on the CPU, but the loop over groups below would leave
      // gradW unwritten. An empty batch-reduce writes the zeros.
      batchReduce.gemm(
          false, true, g.outChannels(), taps, positions, 0, gradY, 0, x, 0, gradW, false);
      return;
    }
    long columnSize = (long) taps * positions;
    int groupSize = imagesPerGroup(g);
    DeviceBuffer column = runtime.allocateFloats(groupSize * columnSize);
    try {
      for (int first = 0; first < g.batch(); first += groupSize) {
        int images = Math.min(groupSize, g.batch() - first);
        im2col(x, first, images, column, g);
        batchReduce.gemm(
            false,
            true,
            g.outChannels(),
            taps,
            positions,
            images,
            outputImages(gradY, first, images, g),
            outputSize(g),
            column,
            columnSize,
            gradW,
            first > 0);
      }
    } finally {
      runtime.free(column);
    }
    DeviceRuntime.keepReachable(gradY, x, gradW);
  }

  /**
   * Computes the bias gradient gradBias[oc] = the sum of gradY over batch and positions,
   * overwriting gradBias, as {@code Conv2dKernels.backwardBias}. Every route uses it: a sum per
   * channel is one kernel either way.
   *
   * <p>Launches {@code kiln_conv_backward_bias} once, one block per output channel, whose threads
   * reduce the batch * positions terms with warp shuffles in a fixed order.
   */
  public void backwardBias(DeviceBuffer gradY, Conv2dGeometry g, DeviceBuffer gradBias) {
    requireFloats("conv output gradient", gradY, g.outputSize());
    requireFloats("conv bias gradient", gradBias, g.outChannels());
    int positions = positions(g);
    runtime.launch(
        "kiln_conv_backward_bias",
        Dim3.of(g.outChannels()),
        blockFor((long) g.batch() * positions),
        0,
        gradY,
        gradBias,
        g.batch(),
        g.outChannels(),
        positions);
  }

  /** Launches one im2col over {@code images} images of x from image {@code first}. */
  private void im2col(
      DeviceBuffer x, int first, int images, DeviceBuffer column, Conv2dGeometry g) {
    long imageSize = (long) g.inChannels() * g.inHeight() * g.inWidth();
    long entries = (long) images * taps(g) * positions(g);
    Dim3 block = blockFor(entries);
    runtime.launch(
        "kiln_conv_im2col",
        gridFor(entries, block),
        block,
        0,
        columnArgs(slice(x, first * imageSize, images * imageSize), column, images, g));
  }

  /** Returns the arguments of im2col and col2im, which share one parameter list. */
  private static Object[] columnArgs(
      DeviceBuffer first, DeviceBuffer second, int images, Conv2dGeometry g) {
    return new Object[] {
      first,
      second,
      images,
      g.inChannels(),
      g.inHeight(),
      g.inWidth(),
      g.kernelHeight(),
      g.kernelWidth(),
      g.strideHeight(),
      g.strideWidth(),
      g.padHeight(),
      g.padWidth(),
      g.dilationHeight(),
      g.dilationWidth()
    };
  }

  /**
   * Returns the arguments of the direct kernels: their pointers (the forward kernel's third one,
   * the bias, is an {@link Optional} because it may be absent), then the geometry in the order the
   * kernels declare it.
   */
  private static Object[] directArgs(Conv2dGeometry g, Object... pointers) {
    Object[] geometry = {
      g.batch(),
      g.inChannels(),
      g.inHeight(),
      g.inWidth(),
      g.outChannels(),
      g.kernelHeight(),
      g.kernelWidth(),
      g.strideHeight(),
      g.strideWidth(),
      g.padHeight(),
      g.padWidth(),
      g.dilationHeight(),
      g.dilationWidth()
    };
    Object[] args = new Object[pointers.length + geometry.length];
    System.arraycopy(pointers, 0, args, 0, pointers.length);
    System.arraycopy(geometry, 0, args, pointers.length, geometry.length);
    return args;
  }

  /**
   * Returns images {@code first} to {@code first + images - 1} of an output-shaped buffer [batch,
   * outChannels, outHeight, outWidth].
   */
  private static DeviceBuffer outputImages(
      DeviceBuffer buffer, int first, int images, Conv2dGeometry g) {
    return slice(buffer, first * outputSize(g), images * outputSize(g));
  }

  /** Returns the floats of one image's output, outChannels * positions. */
  private static long outputSize(Conv2dGeometry g) {
    return (long) g.outChannels() * positions(g);
  }

  /** Returns how many images' column matrices fit in the column limit, at least 1. */
  private int imagesPerGroup(Conv2dGeometry g) {
    long perImage = (long) taps(g) * positions(g);
    return (int) Math.max(1, Math.min(g.batch(), columnLimitFloats / perImage));
  }

  private static int taps(Conv2dGeometry g) {
    return g.inChannels() * g.kernelHeight() * g.kernelWidth();
  }

  private static int positions(Conv2dGeometry g) {
    return g.outHeight() * g.outWidth();
  }
}
