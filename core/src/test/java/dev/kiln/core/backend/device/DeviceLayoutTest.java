package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.LayoutKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tests {@link DeviceLayout} against the CPU's {@link LayoutKernels}, laying out each shape op as
 * the class comment of DeviceLayout describes. A copy does no arithmetic, so results must match
 * exactly. Destinations start as NaN, so a skipped element fails the comparison.
 */
@ExtendWith(SkipUnusableCuda.class)
class DeviceLayoutTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** Copies and fills must reproduce every float exactly. */
  private static final DeviceTestSupport.Tolerance EXACT = new DeviceTestSupport.Tolerance(0, 0);

  @ParameterizedTest
  @MethodSource(DEVICES)
  void fillWritesValueToFirstN(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(301);

      layout.fill(out, 300, -1.5f);

      double[] expected = new double[301];
      Arrays.fill(expected, 0, 300, -1.5);
      expected[300] = Double.NaN;
      assertClose(device, "fill of 300 with -1.5", expected, buffers.read(out, 301), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void permuteMatchesCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    int[] shape = {2, 3, 4};
    int[] dims = {2, 0, 1};
    float[] x = randomFloats(new Random(DeviceTestSupport.SEED), 24);
    Storage expected = f64(24);
    LayoutKernels.permute(f64(x), shape, dims, expected);

    int[] inStrides = DeviceLayout.contiguousStrides(shape);
    int[] outShape = new int[3];
    int[] srcStrides = new int[3];
    for (int i = 0; i < 3; i++) {
      outShape[i] = shape[dims[i]];
      srcStrides[i] = inStrides[dims[i]];
    }
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(24);

      layout.stridedCopy(
          buffers.of(x), 0, srcStrides, out, 0, DeviceLayout.contiguousStrides(outShape), outShape);

      assertClose(device, "permute (2, 0, 1) of [2, 3, 4]", expected, buffers.read(out, 24), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sliceMatchesCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    // Positions 1 to 3 along dimension 1 of a [3, 5, 2] tensor, which gives [3, 3, 2].
    int[] shape = {3, 5, 2};
    int[] outShape = {3, 3, 2};
    float[] x = randomFloats(new Random(DeviceTestSupport.SEED), 30);
    Storage expected = f64(18);
    LayoutKernels.copyAlongDim(f64(x), 5, 1, expected, 3, 0, 3, 3, 2);

    int[] inStrides = DeviceLayout.contiguousStrides(shape);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(18);

      layout.stridedCopy(
          buffers.of(x),
          1 * inStrides[1],
          inStrides,
          out,
          0,
          DeviceLayout.contiguousStrides(outShape),
          outShape);

      assertClose(device, "slice 1:4 of dimension 1", expected, buffers.read(out, 18), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void expandRepeatsWithZeroStride(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    // [1, 3] expands to [4, 2, 3]: a new leading dimension and a grown one, both of stride 0.
    float[] x = {0.25f, -2f, 7f};
    int[] outShape = {4, 2, 3};
    double[] expected = new double[24];
    for (int i = 0; i < 24; i++) {
      expected[i] = x[i % 3];
    }
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(24);

      layout.stridedCopy(
          buffers.of(x),
          0,
          new int[] {0, 0, 1},
          out,
          0,
          DeviceLayout.contiguousStrides(outShape),
          outShape);

      assertClose(device, "expand [1, 3] to [4, 2, 3]", expected, buffers.read(out, 24), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void catAlongDimOneMatchesCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    // [2, 3, 4] and [2, 1, 4] joined along dimension 1 into [2, 4, 4].
    Random random = new Random(DeviceTestSupport.SEED);
    int[] aShape = {2, 3, 4};
    int[] bShape = {2, 1, 4};
    int[] outShape = {2, 4, 4};
    float[] a = randomFloats(random, 24);
    float[] b = randomFloats(random, 8);
    Storage expected = f64(32);
    LayoutKernels.copyAlongDim(f64(a), 3, 0, expected, 4, 0, 2, 3, 4);
    LayoutKernels.copyAlongDim(f64(b), 1, 0, expected, 4, 3, 2, 1, 4);

    int[] outStrides = DeviceLayout.contiguousStrides(outShape);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(32);

      layout.stridedCopy(
          buffers.of(a), 0, DeviceLayout.contiguousStrides(aShape), out, 0, outStrides, aShape);
      layout.stridedCopy(
          buffers.of(b),
          0,
          DeviceLayout.contiguousStrides(bShape),
          out,
          3 * outStrides[1],
          outStrides,
          bShape);

      assertClose(device, "cat along dimension 1", expected, buffers.read(out, 32), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void shapeOpHelpersMatchCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    Random random = new Random(DeviceTestSupport.SEED);
    float[] x = randomFloats(random, 24);
    float[] row = randomFloats(random, 4);
    Storage permuted = f64(24);
    LayoutKernels.permute(f64(x), new int[] {2, 3, 4}, new int[] {1, 2, 0}, permuted);
    // Positions 1 and 2 along dimension 1 of the [2, 3, 4] tensor, written at positions 2 and 3 of
    // a [2, 5, 4] destination.
    Storage block = f64(new float[40]);
    LayoutKernels.copyAlongDim(f64(x), 3, 1, block, 5, 2, 2, 2, 4);
    double[] expanded = new double[12];
    for (int i = 0; i < 12; i++) {
      expanded[i] = row[i % 4];
    }
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer deviceX = buffers.of(x);
      DeviceBuffer permuteOut = buffers.filled(24);
      DeviceBuffer blockOut = buffers.of(new float[40]);
      DeviceBuffer expandOut = buffers.filled(12);

      layout.permute(deviceX, new int[] {2, 3, 4}, new int[] {1, 2, 0}, permuteOut);
      layout.copyAlongDim(deviceX, 3, 1, blockOut, 5, 2, 2, 2, 4);
      layout.expand(buffers.of(row), new int[] {1, 4}, expandOut, new int[] {3, 4});

      assertClose(device, "permute (1, 2, 0)", permuted, buffers.read(permuteOut, 24), EXACT);
      assertClose(device, "copyAlongDim", block, buffers.read(blockOut, 40), EXACT);
      assertClose(device, "expand [1, 4] to [3, 4]", expanded, buffers.read(expandOut, 12), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void rankZeroCopiesOneElement(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    int[] none = {};
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(3);

      layout.stridedCopy(buffers.of(new float[] {4f, 5f}), 1, none, out, 2, none, none);

      double[] expected = {Double.NaN, Double.NaN, 5};
      assertClose(device, "rank 0 copy of x[1] to out[2]", expected, buffers.read(out, 3), EXACT);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void boundCheckRejectsSmallBuffer(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    int[] shape = {3, 4};
    int[] strides = DeviceLayout.contiguousStrides(shape);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      // Exact-size views, because the allocator rounds buffers up to a size class.
      DeviceBuffer twelve = DeviceRuntime.slice(buffers.filled(12), 0, 12);
      DeviceBuffer eleven = DeviceRuntime.slice(buffers.filled(12), 0, 11);

      IllegalArgumentException smallDestination =
          assertThrows(
              IllegalArgumentException.class,
              () -> layout.stridedCopy(twelve, 0, strides, eleven, 0, strides, shape));
      IllegalArgumentException offsetSource =
          assertThrows(
              IllegalArgumentException.class,
              () -> layout.stridedCopy(twelve, 1, strides, twelve, 0, strides, shape));

      String message = smallDestination.getMessage();
      assertTrue(message.contains("destination"), message);
      assertTrue(message.contains("[3, 4]"), message);
      assertTrue(message.contains("[4, 1]"), message);
      assertTrue(message.contains("index 11"), message);
      assertTrue(message.contains("11 floats"), message);
      assertTrue(offsetSource.getMessage().contains("source"), offsetSource.getMessage());
      assertTrue(offsetSource.getMessage().contains("index 12"), offsetSource.getMessage());
      // Neither rejected call may have launched.
      assertEquals(
          0, countWritten(buffers.read(eleven, 11)), "elements written by a rejected copy");
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void stridedCopyRejectsInvalidGeometry(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer buffer = buffers.filled(64);
      DeviceBuffer other = buffers.filled(64);
      int[] nine = new int[9];
      Arrays.fill(nine, 1);

      IllegalArgumentException ranks =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  layout.stridedCopy(
                      buffer, 0, new int[] {1}, other, 0, new int[] {2, 1}, new int[] {2, 2}));
      IllegalArgumentException tooDeep =
          assertThrows(
              IllegalArgumentException.class,
              () -> layout.stridedCopy(buffer, 0, nine, other, 0, nine, nine));
      IllegalArgumentException repeated =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  layout.stridedCopy(
                      buffer, 0, new int[] {1, 0}, other, 0, new int[] {0, 1}, new int[] {2, 2}));
      IllegalArgumentException negative =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  layout.stridedCopy(
                      buffer, 0, new int[] {1}, other, 0, new int[] {1}, new int[] {-1}));

      assertTrue(ranks.getMessage().contains("[1] and [2, 1]"), ranks.getMessage());
      assertTrue(tooDeep.getMessage().contains("rank 9"), tooDeep.getMessage());
      assertTrue(repeated.getMessage().contains("dimension 0"), repeated.getMessage());
      assertTrue(negative.getMessage().contains("negative"), negative.getMessage());
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void emptyShapeLaunchesNothing(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceLayout layout = new DeviceLayout(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(4);

      layout.stridedCopy(out, 0, new int[] {4, 1}, out, 0, new int[] {4, 1}, new int[] {0, 4});
      layout.fill(out, 0, 1f);

      assertEquals(0, countWritten(buffers.read(out, 4)), "elements written by empty launches");
    }
  }

  /** Counts the elements that are no longer the NaN a test buffer starts with. */
  private static int countWritten(float[] values) {
    int count = 0;
    for (float value : values) {
      if (!Float.isNaN(value)) {
        count++;
      }
    }
    return count;
  }
}
