package dev.kiln.core.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.core.autograd.GradCheck;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Reductions along a dimension of a zero-dimensional tensor. PyTorch 1.13 accepts dim 0 or -1 on a
 * scalar and returns the scalar itself, with shape {@code []} also under keepdim, and index 0 for
 * max. Any other dimension raises an error that gives the valid range as -1 to 0.
 */
class ScalarReductionTest {

  /** Returns each dimension (0 or -1) and keepDim, on the CPU in both dtypes and on emulated. */
  static Stream<Arguments> cases() {
    Stream.Builder<Arguments> cases = Stream.builder();
    Object[][] placements = {
      {Device.CPU, DType.FLOAT32},
      {Device.CPU, DType.FLOAT64},
      {Device.parse("emulated"), DType.FLOAT32}
    };
    for (Object[] placement : placements) {
      for (int dim : new int[] {0, -1}) {
        for (boolean keepDim : new boolean[] {false, true}) {
          cases.add(Arguments.of(placement[0], placement[1], dim, keepDim));
        }
      }
    }
    return cases.build();
  }

  private static Tensor scalarLeaf(double value, DType dtype, Device device) {
    return Tensor.scalar(value, dtype).to(device).requiresGrad(true);
  }

  /** Asserts a scalar result and the gradient 1 that its backward pass gives the input. */
  private static void assertIdentity(Tensor input, Tensor result, double value, Device device) {
    result.backward();

    assertArrayEquals(new int[0], result.shape(), "shape");
    assertEquals(device, result.device(), "device");
    assertEquals(value, result.to(Device.CPU).item(), 0.0, "value");
    assertArrayEquals(new int[0], input.grad().shape(), "gradient shape");
    assertEquals(1.0, input.grad().to(Device.CPU).item(), 0.0, "gradient");
  }

  @ParameterizedTest
  @MethodSource("cases")
  void maxOfScalar(Device device, DType dtype, int dim, boolean keepDim) {
    Tensor x = scalarLeaf(-2.5, dtype, device);

    Reductions.MaxResult max = x.max(dim, keepDim);

    assertArrayEquals(new int[] {0}, max.indices(), "indices");
    assertArrayEquals(new int[0], max.indexShape(), "index shape");
    assertIdentity(x, max.values(), -2.5, device);
  }

  @ParameterizedTest
  @MethodSource("cases")
  void sumOfScalar(Device device, DType dtype, int dim, boolean keepDim) {
    Tensor x = scalarLeaf(3.5, dtype, device);

    assertIdentity(x, x.sum(new int[] {dim}, keepDim), 3.5, device);
  }

  @ParameterizedTest
  @MethodSource("cases")
  void meanOfScalar(Device device, DType dtype, int dim, boolean keepDim) {
    Tensor x = scalarLeaf(3.5, dtype, device);

    assertIdentity(x, x.mean(new int[] {dim}, keepDim), 3.5, device);
  }

  @ParameterizedTest
  @MethodSource("cases")
  void varianceOfScalar(Device device, DType dtype, int dim, boolean keepDim) {
    // One element: the biased variance is 0, and Bessel's correction divides 0 by 0.
    Tensor x = Tensor.scalar(3.5, dtype).to(device);

    Tensor biased = x.variance(new int[] {dim}, false, keepDim);
    Tensor unbiased = x.variance(new int[] {dim}, true, keepDim);

    assertArrayEquals(new int[0], biased.shape(), "biased shape");
    assertEquals(0.0, biased.to(Device.CPU).item(), 0.0, "biased");
    assertArrayEquals(new int[0], unbiased.shape(), "unbiased shape");
    assertEquals(Double.NaN, unbiased.to(Device.CPU).item(), 0.0, "unbiased");
  }

  @Test
  void scalarRejectsOtherDims() {
    Tensor x = Tensor.scalar(1.0, DType.FLOAT64);
    String range = " is out of range for a tensor of shape [] (valid: -1 to 0)";

    for (int dim : new int[] {1, -2}) {
      IllegalArgumentException maxError =
          assertThrows(IllegalArgumentException.class, () -> x.max(dim, false));
      assertEquals("max: dimension " + dim + range, maxError.getMessage());
      IllegalArgumentException sumError =
          assertThrows(IllegalArgumentException.class, () -> x.sum(new int[] {dim}, false));
      assertEquals("sum: dimension " + dim + range, sumError.getMessage());
      IllegalArgumentException meanError =
          assertThrows(IllegalArgumentException.class, () -> x.mean(new int[] {dim}, true));
      assertEquals("mean: dimension " + dim + range, meanError.getMessage());
    }
  }

  @Test
  void scalarRejectsRepeatedDim() {
    Tensor x = Tensor.scalar(1.0, DType.FLOAT64);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> x.sum(new int[] {0, -1}, false));

    assertEquals("sum: dimension -1 is listed twice for shape []", error.getMessage());
  }

  @Test
  void scalarReductionsPassGradCheck() {
    Function<Tensor, Tensor> maxThenSum = x -> x.max(0, true).values().sum(new int[] {-1}, false);

    GradCheck.assertGradients(
        in -> maxThenSum.apply(in.get(0)).mul(in.get(0).mean(new int[] {0}, true)),
        TestInputs.uniform(7));
  }
}
