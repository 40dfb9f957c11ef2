package dev.kiln.kernels;

import static dev.kiln.kernels.KernelTestSupport.assertClose;
import static dev.kiln.kernels.KernelTestSupport.toFloats;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of losses.cu under CPU emulation and compares the summed loss and the gradient
 * with a double-precision reference that restates kiln's CPU LossKernels formulas.
 */
class LossesKernelsTest {

  /**
   * Relative error of the loss sum, against the sum of the terms (all terms are at least 0). Each
   * term carries a few roundings (the difference, a square or log1pf of at most 2 ulp), and the
   * float sum over threads, warps and blocks adds about 20 more for these sizes. 4e-6 is about 67
   * units of 2^-24.
   */
  private static final double SUM_TOLERANCE = 4e-6;

  /**
   * Relative tolerance of one gradient element: the float difference, then a division or a product,
   * then the scale. Wing's division by (epsilon + |d|) adds one more rounding. 1e-6 is about 8 ulp.
   */
  private static final double GRAD_TOLERANCE = 1e-6;

  /** Absolute floor for gradient elements near zero. */
  private static final double NEAR_ZERO = 1e-9;

  private static final int BLOCK = 256;
  private static final int N = 1037;

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

  /** A loss term f(d) or its derivative f'(d). */
  interface Pointwise {
    double apply(double d);
  }

  /** One loss: kernel, its parameters after the size, input range, and reference f and f'. */
  record LossCase(
      String name,
      String kernel,
      Object[] parameters,
      float range,
      Pointwise value,
      Pointwise derivative) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<LossCase> cases() {
    double beta = 0.7;
    double w = 10;
    double epsilon = 2;
    double offset = w - w * Math.log1p(w / epsilon);
    return Stream.of(
        new LossCase("MSE", "kiln_losses_mse", new Object[0], 3, d -> d * d, d -> 2 * d),
        new LossCase("L1", "kiln_losses_l1", new Object[0], 3, Math::abs, Math::signum),
        new LossCase(
            "SmoothL1 beta 0.7",
            "kiln_losses_smooth_l1",
            new Object[] {(float) beta},
            3,
            d -> Math.abs(d) < beta ? 0.5 * d * d / beta : Math.abs(d) - 0.5 * beta,
            d -> Math.abs(d) < beta ? d / beta : Math.signum(d)),
        new LossCase(
            "SmoothL1 beta 0 is L1",
            "kiln_losses_smooth_l1",
            new Object[] {0f},
            3,
            Math::abs,
            Math::signum),
        new LossCase(
            "Wing w 10 epsilon 2",
            "kiln_losses_wing",
            new Object[] {(float) w, (float) epsilon},
            15,
            d -> Math.abs(d) < w ? w * Math.log1p(Math.abs(d) / epsilon) : Math.abs(d) - offset,
            d -> Math.abs(d) < w ? w * Math.signum(d) / (epsilon + Math.abs(d)) : Math.signum(d)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void sumAndGradientMatchReference(LossCase loss) {
    float[] x = support.randomFloats(N, -loss.range(), loss.range());
    float[] t = support.randomFloats(N, -loss.range(), loss.range());
    // Equal pairs put d exactly at 0, where the derivative must be 0.
    for (int i = 0; i < N; i += 50) {
      t[i] = x[i];
    }
    int blocks = Dim3.blocksFor(N, BLOCK);
    MemorySegment partials = support.floats(blocks);
    MemorySegment grad = support.filled(N, Float.NaN);
    float scale = 1f / N;
    launch(loss, blocks, support.segmentOf(x), support.segmentOf(t), partials, grad, scale);

    double expectedSum = 0;
    double[] expectedGrad = new double[N];
    for (int i = 0; i < N; i++) {
      double d = (double) x[i] - t[i];
      expectedSum += loss.value().apply(d);
      expectedGrad[i] = scale * loss.derivative().apply(d);
    }
    double sum = 0;
    for (float partial : toFloats(partials, blocks)) {
      sum += partial;
    }
    assertEquals(expectedSum, sum, SUM_TOLERANCE * expectedSum, loss + " sum");
    assertClose(loss + " gradient", expectedGrad, toFloats(grad, N), NEAR_ZERO, GRAD_TOLERANCE);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void smallGridWithoutGradient(LossCase loss) {
    float[] x = support.randomFloats(N, -loss.range(), loss.range());
    float[] t = support.randomFloats(N, -loss.range(), loss.range());
    // Three blocks: every thread handles one or two elements through the grid-stride loop.
    MemorySegment partials = support.floats(3);
    launch(loss, 3, support.segmentOf(x), support.segmentOf(t), partials, MemorySegment.NULL, 1f);

    double expectedSum = 0;
    for (int i = 0; i < N; i++) {
      expectedSum += loss.value().apply((double) x[i] - t[i]);
    }
    float[] sums = toFloats(partials, 3);
    assertEquals(
        expectedSum,
        (double) sums[0] + sums[1] + sums[2],
        SUM_TOLERANCE * expectedSum,
        loss + " sum");
  }

  @Test
  void partialSumsReduceOnDevice() {
    float[] x = support.randomFloats(N);
    float[] t = support.randomFloats(N);
    int blocks = Dim3.blocksFor(N, BLOCK);
    MemorySegment partials = support.floats(blocks);
    kernels.launch(
        "kiln_losses_mse",
        Dim3.of(blocks),
        Dim3.of(BLOCK),
        0,
        support.segmentOf(x),
        support.segmentOf(t),
        partials,
        MemorySegment.NULL,
        N,
        1f);
    // The mean, as the CUDA backend forms it: one sum over the partials, scaled by 1/n.
    MemorySegment mean = support.floats(1);
    kernels.launch(
        "kiln_reductions_sum",
        Dim3.of(1),
        Dim3.of(32),
        0,
        partials,
        mean,
        support.segmentOf(new int[] {blocks}),
        support.segmentOf(new int[] {1}),
        1,
        1f / N);

    double expected = 0;
    for (int i = 0; i < N; i++) {
      double d = (double) x[i] - t[i];
      expected += d * d / N;
    }
    assertEquals(expected, mean.get(ValueLayout.JAVA_FLOAT, 0), SUM_TOLERANCE * expected, "mean");
  }

  private void launch(
      LossCase loss,
      int blocks,
      MemorySegment x,
      MemorySegment t,
      MemorySegment partials,
      MemorySegment grad,
      float scale) {
    Object[] args = new Object[5 + loss.parameters().length + 1];
    args[0] = x;
    args[1] = t;
    args[2] = partials;
    args[3] = grad;
    args[4] = N;
    System.arraycopy(loss.parameters(), 0, args, 5, loss.parameters().length);
    args[args.length - 1] = scale;
    kernels.launch(loss.kernel(), Dim3.of(blocks), Dim3.of(BLOCK), 0, args);
  }
}
