package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Conv2dKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests both routes of {@link DeviceConv} against {@link Conv2dKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceConvTest {
  /** kiln's own routes; the cuDNN route is tested with a stand-in library in VendorRoutingTest. */
  private static final DeviceConv.Route[] KILN_ROUTES = {
    DeviceConv.Route.IM2COL, DeviceConv.Route.DIRECT
  };

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /**
   * A batch of 2 images of 3 x 7 x 6 into 4 channels, with a 3 x 2 kernel, stride (2, 1), padding
   * (1, 1) and dilation (1, 2). Every pair of sizes differs, so a swapped height and width, a
   * missed stride or a wrong padding offset changes the result. The output is 2 x 4 x 4 x 6.
   */
  private static final Conv2dGeometry GEOMETRY =
      new Conv2dGeometry(2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1, 2);

  @ParameterizedTest
  @MethodSource(DEVICES)
  void forwardMatchesTheCpuOnBothRoutes(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceConv conv = new DeviceConv(runtime);
    Conv2dGeometry g = GEOMETRY;
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] bias = randomFloats(random, g.outChannels());
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (boolean withBias : new boolean[] {true, false}) {
        Storage expected = f64(g.outputSize());
        Conv2dKernels.forward(f64(x), f64(w), withBias ? f64(bias) : null, g, expected);
        for (DeviceConv.Route route : KILN_ROUTES) {
          DeviceBuffer y = buffers.filled(g.outputSize());
          conv.forward(
              route, buffers.of(x), buffers.of(w), withBias ? buffers.of(bias) : null, g, y);
          assertClose(
              device,
              "conv forward by " + route + (withBias ? " with bias" : " without bias"),
              expected,
              buffers.read(y, g.outputSize()),
              SUMMED);
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void backwardMatchesTheCpuOnBothRoutes(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceConv conv = new DeviceConv(runtime);
    Conv2dGeometry g = GEOMETRY;
    Random random = new Random(DeviceTestSupport.SEED + 1);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());

    Storage expectedGradX = f64(g.inputSize());
    Conv2dKernels.backwardData(f64(gradY), f64(w), g, expectedGradX);
    Storage expectedGradW = f64(g.weightSize());
    Conv2dKernels.backwardWeight(f64(gradY), f64(x), g, expectedGradW);
    Storage expectedGradBias = f64(g.outChannels());
    Conv2dKernels.backwardBias(f64(gradY), g, expectedGradBias);

    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceW = buffers.of(w);
      DeviceBuffer deviceGradY = buffers.of(gradY);
      for (DeviceConv.Route route : KILN_ROUTES) {
        DeviceBuffer gradX = buffers.filled(g.inputSize());
        conv.backwardData(route, deviceGradY, deviceW, g, gradX);
        assertClose(
            device,
            "conv input gradient by " + route,
            expectedGradX,
            buffers.read(gradX, g.inputSize()),
            SUMMED);

        DeviceBuffer gradW = buffers.filled(g.weightSize());
        conv.backwardWeight(route, deviceGradY, deviceX, g, gradW);
        assertClose(
            device,
            "conv weight gradient by " + route,
            expectedGradW,
            buffers.read(gradW, g.weightSize()),
            SUMMED);
      }
      DeviceBuffer gradBias = buffers.filled(g.outChannels());
      conv.backwardBias(deviceGradY, g, gradBias);
      assertClose(
          device,
          "conv bias gradient",
          expectedGradBias,
          buffers.read(gradBias, g.outChannels()),
          SUMMED);
    }
  }

  /** GEOMETRY with a batch of 8, the output 8 x 4 x 4 x 6. */
  private static final Conv2dGeometry BATCH_OF_8 =
      new Conv2dGeometry(8, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1, 2);

  /** Column entries of one image of BATCH_OF_8: 18 taps times 24 positions. */
  private static final long IMAGE_COLUMN_FLOATS = 18 * 24;

  @ParameterizedTest
  @MethodSource(DEVICES)
  void im2colInGroupsMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    Conv2dGeometry g = BATCH_OF_8;
    Random random = new Random(DeviceTestSupport.SEED + 2);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());
    Storage expectedY = f64(g.outputSize());
    Conv2dKernels.forward(f64(x), f64(w), null, g, expectedY);
    Storage expectedGradX = f64(g.inputSize());
    Conv2dKernels.backwardData(f64(gradY), f64(w), g, expectedGradX);
    Storage expectedGradW = f64(g.weightSize());
    Conv2dKernels.backwardWeight(f64(gradY), f64(x), g, expectedGradW);

    // Groups of 8, of 3, 3 and 2, and of one image each.
    for (int groupSize : new int[] {8, 3, 1}) {
      DeviceConv conv =
          new DeviceConv(runtime, new DeviceMatmul(runtime), null, columns(groupSize));
      try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
        DeviceBuffer y = buffers.filled(g.outputSize());
        DeviceBuffer gradX = buffers.filled(g.inputSize());
        DeviceBuffer gradW = buffers.filled(g.weightSize());
        conv.forward(DeviceConv.Route.IM2COL, buffers.of(x), buffers.of(w), null, g, y);
        conv.backwardData(DeviceConv.Route.IM2COL, buffers.of(gradY), buffers.of(w), g, gradX);
        conv.backwardWeight(DeviceConv.Route.IM2COL, buffers.of(gradY), buffers.of(x), g, gradW);

        String groups = " in groups of " + groupSize;
        assertClose(
            device, "conv forward" + groups, expectedY, buffers.read(y, g.outputSize()), SUMMED);
        assertClose(
            device,
            "conv input gradient" + groups,
            expectedGradX,
            buffers.read(gradX, g.inputSize()),
            SUMMED);
        assertClose(
            device,
            "conv weight gradient" + groups,
            expectedGradW,
            buffers.read(gradW, g.weightSize()),
            SUMMED);
      }
    }
  }

  @Test
  void im2colOddShapesMatchTheCpu() {
    DeviceRuntime runtime = runtime("emulated");
    // The shapes are a 1 x 1 kernel, then stride 2 with padding 2 and a 3 x 3 kernel, then 1600
    // positions per image. The last one's weight gradient sums 4800 steps in slices of 544, which
    // end inside an image.
    Conv2dGeometry[] shapes = {
      new Conv2dGeometry(5, 3, 4, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1),
      new Conv2dGeometry(5, 2, 9, 8, 3, 3, 3, 2, 2, 2, 1, 1, 1),
      new Conv2dGeometry(3, 1, 40, 40, 2, 3, 3, 1, 1, 1, 1, 1, 1)
    };
    Random random = new Random(DeviceTestSupport.SEED + 5);
    for (Conv2dGeometry g : shapes) {
      long perImage =
          (long) g.inChannels() * g.kernelHeight() * g.kernelWidth() * g.outHeight() * g.outWidth();
      float[] x = randomFloats(random, g.inputSize());
      float[] w = randomFloats(random, g.weightSize());
      float[] gradY = randomFloats(random, g.outputSize());
      Storage expectedY = f64(g.outputSize());
      Conv2dKernels.forward(f64(x), f64(w), null, g, expectedY);
      Storage expectedGradX = f64(g.inputSize());
      Conv2dKernels.backwardData(f64(gradY), f64(w), g, expectedGradX);
      Storage expectedGradW = f64(g.weightSize());
      Conv2dKernels.backwardWeight(f64(gradY), f64(x), g, expectedGradW);
      // Groups of 2 (the last one short), a limit between two group sizes, and a limit below one
      // image, which still makes groups of one.
      for (long limit : new long[] {2 * perImage, 2 * perImage + 1, perImage - 1, 1L << 26}) {
        DeviceConv conv = new DeviceConv(runtime, new DeviceMatmul(runtime), null, limit);
        try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
          DeviceBuffer y = buffers.filled(g.outputSize());
          DeviceBuffer gradX = buffers.filled(g.inputSize());
          DeviceBuffer gradW = buffers.filled(g.weightSize());
          conv.forward(DeviceConv.Route.IM2COL, buffers.of(x), buffers.of(w), null, g, y);
          conv.backwardData(DeviceConv.Route.IM2COL, buffers.of(gradY), buffers.of(w), g, gradX);
          conv.backwardWeight(DeviceConv.Route.IM2COL, buffers.of(gradY), buffers.of(x), g, gradW);
          String label = " " + g + " limit " + limit;
          assertClose("emulated", "y" + label, expectedY, buffers.read(y, g.outputSize()), SUMMED);
          assertClose(
              "emulated",
              "gradX" + label,
              expectedGradX,
              buffers.read(gradX, g.inputSize()),
              SUMMED);
          assertClose(
              "emulated",
              "gradW" + label,
              expectedGradW,
              buffers.read(gradW, g.weightSize()),
              SUMMED);
        }
      }
    }
  }

  /**
   * A batch of no images writes zeros to the weight gradient, as the CPU does, and the forward and
   * input-gradient passes have nothing to write.
   */
  @ParameterizedTest
  @EnumSource(
      value = DeviceConv.Route.class,
      names = {"IM2COL", "DIRECT"})
  void emptyBatchZeroesWeightGradient(DeviceConv.Route route) {
    DeviceRuntime runtime = runtime("emulated");
    Conv2dGeometry g = new Conv2dGeometry(0, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1, 2);
    DeviceConv conv = new DeviceConv(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer gradW = buffers.filled(g.weightSize());
      DeviceBuffer weight = buffers.filled(g.weightSize());
      DeviceBuffer empty = buffers.filled(1);

      conv.forward(route, empty, weight, null, g, empty);
      conv.backwardData(route, empty, weight, g, empty);
      conv.backwardWeight(route, empty, empty, g, gradW);

      assertArrayEquals(new float[g.weightSize()], buffers.read(gradW, g.weightSize()));
    }
  }

  /** Returns the column limit that makes groups of {@code images} images of BATCH_OF_8. */
  private static long columns(int images) {
    return images * IMAGE_COLUMN_FLOATS;
  }

  @Test
  void im2colLaunchesPerGroup() {
    DeviceRuntime runtime = runtime("emulated");
    Conv2dGeometry g = BATCH_OF_8;
    Random random = new Random(DeviceTestSupport.SEED + 3);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());
    String im2col = "kiln_conv_im2col";
    String product = "kiln_matmul_tiled";
    String sliced = "kiln_matmul_tiled_slices";
    String sum = "kiln_matmul_sum_slices";
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      // One group of 8 images. Its weight gradient, 8 * 24 steps, is one slice written straight
      // into gradW.
      Map<String, Long>[] oneGroup = launches(runtime, buffers, columns(8), x, w, gradY);
      assertEquals(Map.of(im2col, 1L, product, 1L), oneGroup[0], "forward, one group");
      assertEquals(
          Map.of(product, 1L, "kiln_conv_col2im", 1L), oneGroup[1], "input gradient, one group");
      assertEquals(Map.of(im2col, 1L, sliced, 1L), oneGroup[2], "weight gradient, one group");

      // Four groups of 2. The groups after the first add to gradW, through a sum of one slice.
      Map<String, Long>[] fourGroups = launches(runtime, buffers, columns(2), x, w, gradY);
      assertEquals(Map.of(im2col, 4L, product, 4L), fourGroups[0], "forward, four groups");
      assertEquals(
          Map.of(product, 4L, "kiln_conv_col2im", 4L),
          fourGroups[1],
          "input gradient, four groups");
      assertEquals(
          Map.of(im2col, 4L, sliced, 4L, sum, 3L), fourGroups[2], "weight gradient, four groups");
    }
  }

  /**
   * Returns the launches by kernel of the forward pass, the input gradient and the weight gradient
   * of BATCH_OF_8 by im2col, with the given column limit and no bias.
   */
  @SuppressWarnings("unchecked")
  private static Map<String, Long>[] launches(
      DeviceRuntime runtime,
      DeviceTestSupport.Buffers buffers,
      long columnLimit,
      float[] x,
      float[] w,
      float[] gradY) {
    Conv2dGeometry g = BATCH_OF_8;
    DeviceConv conv = new DeviceConv(runtime, new DeviceMatmul(runtime), null, columnLimit);
    DeviceBuffer deviceX = buffers.of(x);
    DeviceBuffer deviceW = buffers.of(w);
    DeviceBuffer deviceGradY = buffers.of(gradY);
    DeviceBuffer y = buffers.filled(g.outputSize());
    DeviceBuffer gradX = buffers.filled(g.inputSize());
    DeviceBuffer gradW = buffers.filled(g.weightSize());
    Map<String, Long>[] launches = new Map[3];
    DeviceWork before = runtime.work();
    conv.forward(DeviceConv.Route.IM2COL, deviceX, deviceW, null, g, y);
    launches[0] = runtime.work().minus(before).launchesByKernel();
    before = runtime.work();
    conv.backwardData(DeviceConv.Route.IM2COL, deviceGradY, deviceW, g, gradX);
    launches[1] = runtime.work().minus(before).launchesByKernel();
    before = runtime.work();
    conv.backwardWeight(DeviceConv.Route.IM2COL, deviceGradY, deviceX, g, gradW);
    launches[2] = runtime.work().minus(before).launchesByKernel();
    return launches;
  }

  @Test
  void im2colMatchesOneImageAtATime() {
    // One product per image was the route before products took a batch. The forward pass and the
    // input gradient sum over the same terms in the same order either way, so they must agree to
    // the bit. So must the weight gradient in groups of one image, which adds each image's
    // product to gradW in float, image after image.
    DeviceRuntime runtime = runtime("emulated");
    Conv2dGeometry g = BATCH_OF_8;
    Conv2dGeometry image = new Conv2dGeometry(1, 3, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1, 2);
    Random random = new Random(DeviceTestSupport.SEED + 4);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());
    DeviceConv batched = new DeviceConv(runtime);
    DeviceConv oneImage = new DeviceConv(runtime, new DeviceMatmul(runtime), null, columns(1));
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceW = buffers.of(w);
      DeviceBuffer y = buffers.filled(g.outputSize());
      DeviceBuffer gradX = buffers.filled(g.inputSize());
      DeviceBuffer gradW = buffers.filled(g.weightSize());
      batched.forward(DeviceConv.Route.IM2COL, buffers.of(x), deviceW, null, g, y);
      batched.backwardData(DeviceConv.Route.IM2COL, buffers.of(gradY), deviceW, g, gradX);
      oneImage.backwardWeight(DeviceConv.Route.IM2COL, buffers.of(gradY), buffers.of(x), g, gradW);

      float[] expectedY = new float[g.outputSize()];
      float[] expectedGradX = new float[g.inputSize()];
      float[] expectedGradW = new float[g.weightSize()];
      for (int b = 0; b < g.batch(); b++) {
        float[] imageX = slice(x, b, image.inputSize());
        float[] imageGradY = slice(gradY, b, image.outputSize());
        DeviceBuffer imageY = buffers.filled(image.outputSize());
        DeviceBuffer imageGradX = buffers.filled(image.inputSize());
        DeviceBuffer imageGradW = buffers.filled(image.weightSize());
        batched.forward(DeviceConv.Route.IM2COL, buffers.of(imageX), deviceW, null, image, imageY);
        batched.backwardData(
            DeviceConv.Route.IM2COL, buffers.of(imageGradY), deviceW, image, imageGradX);
        batched.backwardWeight(
            DeviceConv.Route.IM2COL, buffers.of(imageGradY), buffers.of(imageX), image, imageGradW);
        System.arraycopy(
            buffers.read(imageY, image.outputSize()),
            0,
            expectedY,
            b * image.outputSize(),
            image.outputSize());
        System.arraycopy(
            buffers.read(imageGradX, image.inputSize()),
            0,
            expectedGradX,
            b * image.inputSize(),
            image.inputSize());
        float[] product = buffers.read(imageGradW, image.weightSize());
        for (int i = 0; i < product.length; i++) {
          expectedGradW[i] = b == 0 ? product[i] : expectedGradW[i] + product[i];
        }
      }

      assertArrayEquals(expectedY, buffers.read(y, g.outputSize()), "forward");
      assertArrayEquals(expectedGradX, buffers.read(gradX, g.inputSize()), "input gradient");
      assertArrayEquals(
          expectedGradW, buffers.read(gradW, g.weightSize()), "weight gradient, one image a group");
    }
  }

  /** Returns image b of a batch whose images have {@code size} floats each. */
  private static float[] slice(float[] batch, int b, int size) {
    float[] image = new float[size];
    System.arraycopy(batch, b * size, image, 0, size);
    return image;
  }

  @Test
  void im2colOnCublasCallsOncePerGroup() {
    DeviceRuntime runtime = runtime("emulated");
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceMatmul vendor = DeviceKernels.over(runtime, blas, null, "a host stand-in").matmul();
    DeviceConv conv = new DeviceConv(runtime, vendor, null, columns(4));
    Conv2dGeometry g = BATCH_OF_8;
    Random random = new Random(DeviceTestSupport.SEED + 5);
    float[] x = randomFloats(random, g.inputSize());
    float[] w = randomFloats(random, g.weightSize());
    float[] gradY = randomFloats(random, g.outputSize());
    Storage expectedY = f64(g.outputSize());
    Conv2dKernels.forward(f64(x), f64(w), null, g, expectedY);
    Storage expectedGradX = f64(g.inputSize());
    Conv2dKernels.backwardData(f64(gradY), f64(w), g, expectedGradX);
    Storage expectedGradW = f64(g.weightSize());
    Conv2dKernels.backwardWeight(f64(gradY), f64(x), g, expectedGradW);
    String call = "cublas.sgemmRowMajorStridedBatched";
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer deviceW = buffers.of(w);
      DeviceBuffer deviceGradY = buffers.of(gradY);
      DeviceBuffer y = buffers.filled(g.outputSize());
      DeviceBuffer gradX = buffers.filled(g.inputSize());
      DeviceBuffer gradW = buffers.filled(g.weightSize());
      DeviceWork before = runtime.work();
      conv.forward(DeviceConv.Route.IM2COL, deviceX, deviceW, null, g, y);
      DeviceWork forward = runtime.work().minus(before);
      before = runtime.work();
      conv.backwardData(DeviceConv.Route.IM2COL, deviceGradY, deviceW, g, gradX);
      DeviceWork data = runtime.work().minus(before);
      before = runtime.work();
      conv.backwardWeight(DeviceConv.Route.IM2COL, deviceGradY, deviceX, g, gradW);
      DeviceWork weight = runtime.work().minus(before);

      // Two groups of 4 images: one call per group and direction.
      assertEquals(Map.of(call, 2L), forward.libraryCallsByFunction(), "forward");
      assertEquals(Map.of("kiln_conv_im2col", 2L), forward.launchesByKernel(), "forward");
      assertEquals(Map.of(call, 2L), data.libraryCallsByFunction(), "input gradient");
      assertEquals(Map.of("kiln_conv_col2im", 2L), data.launchesByKernel(), "input gradient");
      assertEquals(Map.of(call, 2L), weight.libraryCallsByFunction(), "weight gradient");
      assertEquals(
          Map.of("kiln_conv_im2col", 2L, "kiln_matmul_sum_slices", 2L),
          weight.launchesByKernel(),
          "weight gradient");
      assertClose(
          "emulated", "conv forward on cuBLAS", expectedY, buffers.read(y, g.outputSize()), SUMMED);
      assertClose(
          "emulated",
          "conv input gradient on cuBLAS",
          expectedGradX,
          buffers.read(gradX, g.inputSize()),
          SUMMED);
      assertClose(
          "emulated",
          "conv weight gradient on cuBLAS",
          expectedGradW,
          buffers.read(gradW, g.weightSize()),
          SUMMED);
    }
  }
}
