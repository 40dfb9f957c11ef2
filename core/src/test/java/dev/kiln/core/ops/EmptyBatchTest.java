package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.device.DeviceTestSupport;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Ops on a batch of 0 images (N = 0), compared with PyTorch 1.13. In PyTorch, conv2d, max and
 * average pooling, batch norm and the regression losses accept an empty batch. They return empty
 * outputs and empty input gradients, zero weight and bias gradients, and unchanged running
 * statistics. A loss with the mean reduction is NaN and one with the sum is 0.
 */
@ExtendWith(SkipUnusableCuda.class)
class EmptyBatchTest {
  private static final int[] ONES = {1, 1};
  private static final int[] ZEROS = {0, 0};

  /** Returns the CPU in both dtypes, and each device of {@link DeviceTestSupport#devices()}. */
  static Stream<Arguments> placements() {
    List<Arguments> cases = new ArrayList<>();
    cases.add(Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT32));
    cases.add(Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT64));
    DeviceTestSupport.devices()
        .forEach(
            name ->
                cases.add(
                    Arguments.of(
                        Named.of(name.getName(), Device.parse(name.getPayload())), DType.FLOAT32)));
    return cases.stream();
  }

  /** Returns a tensor of ones on {@code device} that requires a gradient. */
  private static Tensor onesLeaf(DType dtype, Device device, int... shape) {
    return Tensor.ones(dtype, shape).to(device).requiresGrad(true);
  }

  private static void assertZeros(int[] shape, Tensor actual) {
    assertArrayEquals(shape, actual.shape(), "shape");
    for (double value : actual.to(Device.CPU).toDoubleArray()) {
      assertEquals(0.0, value, 0.0, "value of " + actual);
    }
  }

  private static void assertEmpty(int[] shape, Tensor actual) {
    assertArrayEquals(shape, actual.shape(), "shape");
    assertEquals(0, actual.numel(), "numel");
  }

  @ParameterizedTest
  @MethodSource("placements")
  void conv2dEmptyWithBias(Device device, DType dtype) {
    Tensor x = onesLeaf(dtype, device, 0, 3, 5, 5);
    Tensor weight = onesLeaf(dtype, device, 4, 3, 3, 3);
    Tensor bias = onesLeaf(dtype, device, 4);

    Tensor out = Convolution.conv2d(x, weight, bias, new int[] {2, 1}, ONES, ONES);
    out.sum().backward();

    assertEmpty(new int[] {0, 4, 3, 5}, out);
    assertEquals(dtype, out.dtype());
    assertEquals(device, out.device());
    assertEmpty(new int[] {0, 3, 5, 5}, x.grad());
    assertZeros(new int[] {4, 3, 3, 3}, weight.grad());
    assertZeros(new int[] {4}, bias.grad());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void conv2dEmptyWithoutBias(Device device, DType dtype) {
    Tensor x = onesLeaf(dtype, device, 0, 2, 4, 4);
    Tensor weight = onesLeaf(dtype, device, 3, 2, 2, 2);

    Tensor out = Convolution.conv2d(x, weight, null, ONES, ZEROS, ONES);
    out.sum().backward();

    assertEmpty(new int[] {0, 3, 3, 3}, out);
    assertEmpty(new int[] {0, 2, 4, 4}, x.grad());
    assertZeros(new int[] {3, 2, 2, 2}, weight.grad());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void conv2dEmptyRejectsLargeKernel(Device device, DType dtype) {
    // PyTorch 1.13 checks the kernel against the input also when the batch is empty.
    Tensor x = Tensor.zeros(dtype, 0, 3, 2, 2).to(device);
    Tensor weight = Tensor.ones(dtype, 4, 3, 3, 3).to(device);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Convolution.conv2d(x, weight, null, ONES, ZEROS, ONES));
    assertTrue(error.getMessage().contains("does not fit input 2x2"), error.getMessage());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void maxPool2dEmpty(Device device, DType dtype) {
    Tensor x = onesLeaf(dtype, device, 0, 3, 4, 4);

    Tensor out = Pooling.maxPool2d(x, new int[] {2, 2}, new int[] {2, 2}, ZEROS);
    out.sum().backward();

    assertEmpty(new int[] {0, 3, 2, 2}, out);
    assertEquals(device, out.device());
    assertEmpty(new int[] {0, 3, 4, 4}, x.grad());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void avgPool2dEmpty(Device device, DType dtype) {
    Tensor x = onesLeaf(dtype, device, 0, 3, 5, 5);

    Tensor out = Pooling.avgPool2d(x, new int[] {3, 3}, new int[] {2, 2}, ONES);
    out.sum().backward();

    assertEmpty(new int[] {0, 3, 3, 3}, out);
    assertEquals(device, out.device());
    assertEmpty(new int[] {0, 3, 5, 5}, x.grad());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormTrainingKeepsRunningStats(Device device, DType dtype) {
    assertEmptyBatchNorm(device, dtype, true, 0, 3, 4, 4);
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormEvalEmpty(Device device, DType dtype) {
    assertEmptyBatchNorm(device, dtype, false, 0, 3, 4, 4);
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormEmptyTwoDimensional(Device device, DType dtype) {
    assertEmptyBatchNorm(device, dtype, true, 0, 3);
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormEmptyLength(Device device, DType dtype) {
    // PyTorch 1.13 returns early for any input without elements, not only for N = 0.
    assertEmptyBatchNorm(device, dtype, true, 2, 3, 0);
  }

  private static void assertEmptyBatchNorm(
      Device device, DType dtype, boolean training, int... shape) {
    Tensor x = onesLeaf(dtype, device, shape);
    Tensor weight = onesLeaf(dtype, device, 3);
    Tensor bias = onesLeaf(dtype, device, 3);
    Tensor runningMean = Tensor.of(new double[] {0.5, -1, 2}, 3).to(dtype).to(device);
    Tensor runningVar = Tensor.of(new double[] {2, 0.25, 4}, 3).to(dtype).to(device);

    Tensor out =
        Normalization.batchNorm(x, runningMean, runningVar, weight, bias, training, 0.1, 1e-5);
    out.sum().backward();

    assertEmpty(shape, out);
    assertEquals(device, out.device());
    assertEmpty(shape, x.grad());
    assertZeros(new int[] {3}, weight.grad());
    assertZeros(new int[] {3}, bias.grad());
    assertArrayEquals(
        new double[] {0.5, -1, 2}, runningMean.to(Device.CPU).toDoubleArray(), 0.0, "mean");
    assertArrayEquals(
        new double[] {2, 0.25, 4}, runningVar.to(Device.CPU).toDoubleArray(), 0.0, "variance");
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormEmptyWithoutAffine(Device device, DType dtype) {
    Tensor x = onesLeaf(dtype, device, 0, 2, 3, 3);

    Tensor out = Normalization.batchNorm(x, null, null, null, null, true, 0.1, 1e-5);
    out.sum().backward();

    assertEmpty(new int[] {0, 2, 3, 3}, out);
    assertEmpty(new int[] {0, 2, 3, 3}, x.grad());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void batchNormEmptyRejectsWrongWeight(Device device, DType dtype) {
    Tensor x = Tensor.zeros(dtype, 0, 3, 2, 2).to(device);
    Tensor weight = Tensor.ones(dtype, 4).to(device);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Normalization.batchNorm(x, null, null, weight, null, true, 0.1, 1e-5));
    assertEquals(
        "batchNorm: weight has shape [4], expected one element per channel (3)",
        error.getMessage());
  }

  @ParameterizedTest
  @MethodSource("placements")
  void lossesOfEmptyBatch(Device device, DType dtype) {
    List<LossCase> losses =
        List.of(
            new LossCase("mseLoss", (x, t, r) -> LossOps.mseLoss(x, t, r)),
            new LossCase("l1Loss", (x, t, r) -> LossOps.l1Loss(x, t, r)),
            new LossCase("smoothL1Loss", (x, t, r) -> LossOps.smoothL1Loss(x, t, 1.0, r)),
            new LossCase("wingLoss", (x, t, r) -> LossOps.wingLoss(x, t, 10, 2, r)));
    for (LossCase loss : losses) {
      for (Reduction reduction : Reduction.values()) {
        String label = loss.name() + " " + reduction;
        Tensor x = onesLeaf(dtype, device, 0, 4);
        Tensor t = onesLeaf(dtype, device, 0, 4);

        Tensor value = loss.function().apply(x, t, reduction);
        value.backward();

        double expected = reduction == Reduction.MEAN ? Double.NaN : 0.0;
        assertArrayEquals(new int[0], value.shape(), label + " shape");
        assertEquals(device, value.device(), label + " device");
        assertEquals(expected, value.to(Device.CPU).item(), 0.0, label + " value");
        assertArrayEquals(new int[] {0, 4}, x.grad().shape(), label + " prediction gradient");
        assertArrayEquals(new int[] {0, 4}, t.grad().shape(), label + " target gradient");
      }
    }
  }

  private record LossCase(String name, LossFunction function) {}

  @FunctionalInterface
  private interface LossFunction {
    Tensor apply(Tensor x, Tensor t, Reduction reduction);
  }

  @ParameterizedTest
  @MethodSource("placements")
  void varianceOverEmptyDimIsNan(Device device, DType dtype) {
    // PyTorch 1.13: zeros(0, 3).var(0) is [nan, nan, nan] in both forms, and var() is nan.
    Tensor x = Tensor.zeros(dtype, 0, 3).to(device);

    for (boolean unbiased : new boolean[] {true, false}) {
      Tensor columns = Reductions.variance(x, new int[] {0}, unbiased, false);
      Tensor all = Reductions.variance(x, new int[] {0, 1}, unbiased, false);

      assertArrayEquals(new int[] {3}, columns.shape());
      for (double value : columns.to(Device.CPU).toDoubleArray()) {
        assertTrue(Double.isNaN(value), "unbiased=" + unbiased + ": " + value);
      }
      assertTrue(Double.isNaN(all.to(Device.CPU).item()), "unbiased=" + unbiased + ", all dims");
    }
  }

  @Test
  void geometriesAcceptBatchZero() {
    Conv2dGeometry conv = new Conv2dGeometry(0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    Pool2dGeometry pool = new Pool2dGeometry(0, 3, 4, 4, 2, 2, 2, 2, 0, 0);

    assertEquals(0, conv.outputSize());
    assertEquals(5, conv.outHeight());
    assertEquals(0, pool.outputSize());
    assertEquals(2, pool.outHeight());
    IllegalArgumentException convError =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Conv2dGeometry(-1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1));
    assertEquals("batch must be non-negative, got -1", convError.getMessage());
    IllegalArgumentException poolError =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Pool2dGeometry(-1, 3, 4, 4, 2, 2, 2, 2, 0, 0));
    assertEquals("batch must be non-negative, got -1", poolError.getMessage());
  }

  @Test
  void gradCheckOfOneImage() {
    // The early returns for N = 0 must leave the kernels' path for a non-empty batch unchanged.
    Tensor x = TestInputs.uniform(1, 1, 2, 4, 4);
    Tensor weight = TestInputs.uniform(2, 3, 2, 3, 3);
    Tensor bias = TestInputs.uniform(3, 3);
    Tensor gamma = TestInputs.positive(4, 2);
    Tensor beta = TestInputs.uniform(5, 2);

    GradCheck.assertGradients(
        in -> {
          Tensor normalized =
              Normalization.batchNorm(in.get(0), null, null, in.get(3), in.get(4), true, 0.1, 1e-5);
          Tensor conv = Convolution.conv2d(normalized, in.get(1), in.get(2), ONES, ONES, ONES);
          return Pooling.avgPool2d(conv, new int[] {2, 2}, new int[] {2, 2}, ZEROS);
        },
        x,
        weight,
        bias,
        gamma,
        beta);
  }
}
