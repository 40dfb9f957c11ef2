package dev.kiln.kernels;

import static dev.kiln.kernels.KernelTestSupport.assertClose;
import static dev.kiln.kernels.KernelTestSupport.toFloats;

import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of optimizers.cu under CPU emulation for several consecutive steps and compares
 * the parameters and optimizer state with a reference that restates kiln's CPU OptimizerKernels:
 * each element computed in double and rounded to float when stored.
 */
class OptimizersKernelsTest {

  /**
   * Relative tolerance of parameters and state after a few steps. The kernels round each
   * intermediate to float where the reference keeps double, a handful of roundings of 2^-24 per
   * step, and the steps compound them. 2e-6 allows about 30 such roundings.
   */
  private static final double STEP_TOLERANCE = 2e-6;

  /**
   * Absolute floor, for elements that cancel to near zero. The terms of every update are of order 1
   * (random inputs in [-1, 1)), so such an element keeps their absolute rounding error: a few times
   * 2^-24 per step, below 1e-6 after four steps.
   */
  private static final double NEAR_ZERO = 1e-6;

  private static final int BLOCK = 256;
  private static final int N = 1037;
  private static final int STEPS = 4;

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

  /** One SGD configuration. */
  record SgdCase(
      String name,
      float learningRate,
      float momentum,
      float dampening,
      boolean nesterov,
      float weightDecay) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<SgdCase> sgdCases() {
    return Stream.of(
        new SgdCase("plain", 0.1f, 0f, 0f, false, 0f),
        new SgdCase("weight decay", 0.1f, 0f, 0f, false, 0.01f),
        new SgdCase("momentum", 0.05f, 0.9f, 0f, false, 0f),
        new SgdCase("momentum dampening decay", 0.05f, 0.9f, 0.1f, false, 0.001f),
        new SgdCase("nesterov", 0.05f, 0.9f, 0f, true, 0.0005f));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sgdCases")
  void sgdStepsMatchReference(SgdCase sgd) {
    float[] param = support.randomFloats(N);
    boolean withBuffer = sgd.momentum() != 0;
    MemorySegment paramSegment = support.segmentOf(param);
    MemorySegment bufferSegment = withBuffer ? support.floats(N) : MemorySegment.NULL;
    float[] buffer = new float[N];

    for (int step = 1; step <= STEPS; step++) {
      float[] grad = support.randomFloats(N);
      boolean first = step == 1;
      kernels.launch(
          "kiln_optimizers_sgd",
          grid(),
          Dim3.of(BLOCK),
          0,
          paramSegment,
          support.segmentOf(grad),
          bufferSegment,
          N,
          sgd.learningRate(),
          sgd.momentum(),
          sgd.dampening(),
          sgd.weightDecay(),
          sgd.nesterov() ? 1 : 0,
          first ? 1 : 0);

      // The CPU's float32 loop: double arithmetic, float storage.
      for (int i = 0; i < N; i++) {
        double g =
            sgd.weightDecay() == 0 ? grad[i] : grad[i] + (double) sgd.weightDecay() * param[i];
        double d = g;
        if (withBuffer) {
          double b = first ? g : (double) sgd.momentum() * buffer[i] + (1.0 - sgd.dampening()) * g;
          buffer[i] = (float) b;
          d = sgd.nesterov() ? g + (double) sgd.momentum() * b : b;
        }
        param[i] = (float) (param[i] - (double) sgd.learningRate() * d);
      }
    }
    assertClose(
        sgd + " parameters", widen(param), toFloats(paramSegment, N), NEAR_ZERO, STEP_TOLERANCE);
    if (withBuffer) {
      assertClose(
          sgd + " momentum buffer",
          widen(buffer),
          toFloats(bufferSegment, N),
          NEAR_ZERO,
          STEP_TOLERANCE);
    }
  }

  @Test
  void adamStepsMatchReference() {
    checkAdam(false, 0.01f);
  }

  @Test
  void adamWithoutDecayMatchesReference() {
    checkAdam(false, 0f);
  }

  @Test
  void adamwStepsMatchReference() {
    checkAdam(true, 0.05f);
  }

  private void checkAdam(boolean decoupled, float weightDecay) {
    float learningRate = 0.01f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float[] param = support.randomFloats(N);
    float[] m = new float[N];
    float[] v = new float[N];
    MemorySegment paramSegment = support.segmentOf(param);
    MemorySegment mSegment = support.floats(N);
    MemorySegment vSegment = support.floats(N);

    for (int step = 1; step <= STEPS; step++) {
      float[] grad = support.randomFloats(N);
      // The host side of the kernel contract: bias corrections in double, passed as float.
      double stepSize = learningRate / (1.0 - Math.pow(beta1, step));
      double correction2Sqrt = Math.sqrt(1.0 - Math.pow(beta2, step));
      if (decoupled) {
        kernels.launch(
            "kiln_optimizers_adamw",
            grid(),
            Dim3.of(BLOCK),
            0,
            paramSegment,
            support.segmentOf(grad),
            mSegment,
            vSegment,
            N,
            learningRate,
            beta1,
            beta2,
            eps,
            weightDecay,
            (float) stepSize,
            (float) correction2Sqrt);
      } else {
        kernels.launch(
            "kiln_optimizers_adam",
            grid(),
            Dim3.of(BLOCK),
            0,
            paramSegment,
            support.segmentOf(grad),
            mSegment,
            vSegment,
            N,
            beta1,
            beta2,
            eps,
            weightDecay,
            (float) stepSize,
            (float) correction2Sqrt);
      }

      double l2 = decoupled ? 0 : weightDecay;
      double keep = decoupled ? 1.0 - (double) learningRate * weightDecay : 1.0;
      for (int i = 0; i < N; i++) {
        double g = l2 == 0 ? grad[i] : grad[i] + l2 * param[i];
        m[i] = (float) (beta1 * (double) m[i] + (1.0 - beta1) * g);
        v[i] = (float) (beta2 * (double) v[i] + (1.0 - beta2) * g * g);
        double denominator = Math.sqrt(v[i]) / correction2Sqrt + eps;
        param[i] = (float) (param[i] * keep - stepSize * m[i] / denominator);
      }
    }
    String name = decoupled ? "AdamW" : "Adam";
    assertClose(
        name + " parameters", widen(param), toFloats(paramSegment, N), NEAR_ZERO, STEP_TOLERANCE);
    assertClose(name + " first moment", widen(m), toFloats(mSegment, N), NEAR_ZERO, STEP_TOLERANCE);
    // v is a sum of squares and so never cancels: relative error alone bounds it.
    assertClose(name + " second moment", widen(v), toFloats(vSegment, N), 0, STEP_TOLERANCE);
  }

  private static double[] widen(float[] values) {
    double[] wide = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      wide[i] = values[i];
    }
    return wide;
  }

  private static Dim3 grid() {
    return Dim3.of(Dim3.blocksFor(N, BLOCK));
  }
}
