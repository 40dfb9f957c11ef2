package dev.kiln.kernels;

import static dev.kiln.kernels.KernelTestSupport.assertClose;
import static dev.kiln.kernels.KernelTestSupport.toFloats;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs the kernels of elementwise.cu under CPU emulation and compares every op code with a
 * double-precision reference that restates kiln's UnaryOp and BinaryOp lambdas.
 */
class ElementwiseKernelsTest {

  /**
   * Relative tolerance of ops with one float rounding (add, multiply, divide, sqrt): the kernel
   * rounds once, and the reference rounds the double result once, so they differ by at most one
   * unit in the last place, 2^-23 relative.
   */
  private static final double ONE_ROUNDING = 1.2e-7;

  /**
   * Relative tolerance of exp, log, pow, tanh and the activations built on them. The CUDA C++
   * Programming Guide's table of single-precision maximum ulp errors gives a few ulp for expf,
   * logf, tanhf and powf, and glibc's float functions stay near 1 ulp. The activations add a
   * rounding or two, so 1e-6, about 8 ulp, leaves room.
   */
  private static final double TRANSCENDENTAL = 1e-6;

  /** Absolute floor for results near zero, where a relative bound is meaningless. */
  private static final double NEAR_ZERO = 1e-7;

  /** Threads per block. */
  private static final int BLOCK = 256;

  /** Element count: odd, so the last block is part-full. */
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

  /** A scalar reference function with parameters a and b. */
  interface Unary {
    double apply(double x, double a, double b);
  }

  /** One unary op code, its reference, parameters, input range and tolerance. */
  record UnaryCase(
      String name, int code, Unary reference, float a, float b, float min, float max, double rel) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<UnaryCase> unaryCases() {
    return Stream.of(
        new UnaryCase("NEG", 0, (x, a, b) -> -x, 0, 0, -3, 3, 0),
        new UnaryCase("EXP", 1, (x, a, b) -> Math.exp(x), 0, 0, -5, 5, TRANSCENDENTAL),
        new UnaryCase("LOG", 2, (x, a, b) -> Math.log(x), 0, 0, 0.01f, 10, TRANSCENDENTAL),
        new UnaryCase("SQRT", 3, (x, a, b) -> Math.sqrt(x), 0, 0, 0, 10, ONE_ROUNDING),
        new UnaryCase("ABS", 4, (x, a, b) -> Math.abs(x), 0, 0, -3, 3, 0),
        new UnaryCase("SIGN", 5, (x, a, b) -> Math.signum(x), 0, 0, -3, 3, 0),
        new UnaryCase("POW", 6, (x, a, b) -> Math.pow(x, a), 1.7f, 0, 0.01f, 4, TRANSCENDENTAL),
        new UnaryCase("ADD_SCALAR", 7, (x, a, b) -> x + a, 0.3f, 0, -3, 3, ONE_ROUNDING),
        new UnaryCase("MUL_SCALAR", 8, (x, a, b) -> x * a, -1.3f, 0, -3, 3, ONE_ROUNDING),
        new UnaryCase("CLAMP", 9, (x, a, b) -> Math.min(Math.max(x, a), b), -0.5f, 0.75f, -2, 2, 0),
        new UnaryCase(
            "CLAMP_GRAD", 10, (x, a, b) -> x >= a && x <= b ? 1 : 0, -0.5f, 0.75f, -2, 2, 0),
        new UnaryCase("RELU", 11, (x, a, b) -> x > 0 ? x : 0, 0, 0, -3, 3, 0),
        new UnaryCase("RELU_GRAD", 12, (x, a, b) -> x <= 0 ? 0 : 1, 0, 0, -3, 3, 0),
        new UnaryCase(
            "LEAKY_RELU", 13, (x, a, b) -> x > 0 ? x : a * x, 0.01f, 0, -3, 3, ONE_ROUNDING),
        new UnaryCase("LEAKY_RELU_GRAD", 14, (x, a, b) -> x > 0 ? 1 : a, 0.01f, 0, -3, 3, 0),
        new UnaryCase(
            "ELU", 15, (x, a, b) -> x > 0 ? x : a * Math.expm1(x), 1.1f, 0, -4, 3, TRANSCENDENTAL),
        new UnaryCase(
            "ELU_GRAD",
            16,
            (x, a, b) -> x > 0 ? 1 : a * Math.exp(x),
            1.1f,
            0,
            -4,
            3,
            TRANSCENDENTAL),
        new UnaryCase("TANH", 17, (x, a, b) -> Math.tanh(x), 0, 0, -4, 4, TRANSCENDENTAL),
        new UnaryCase("TANH_GRAD", 18, (y, a, b) -> 1 - y * y, 0, 0, -1, 1, ONE_ROUNDING),
        new UnaryCase(
            "SIGMOID", 19, ElementwiseKernelsTest::sigmoid, 0, 0, -30, 30, TRANSCENDENTAL),
        new UnaryCase("SIGMOID_GRAD", 20, (y, a, b) -> y * (1 - y), 0, 0, 0, 1, ONE_ROUNDING));
  }

  private static double sigmoid(double x, double a, double b) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("unaryCases")
  void unaryMatchesReference(UnaryCase op) {
    float[] x = support.randomFloats(N, op.min(), op.max());
    MemorySegment y = support.floats(N);
    kernels.launch(
        "kiln_elementwise_unary",
        grid(N),
        Dim3.of(BLOCK),
        0,
        support.segmentOf(x),
        y,
        N,
        op.code(),
        op.a(),
        op.b());

    double[] expected = new double[N];
    for (int i = 0; i < N; i++) {
      expected[i] = op.reference().apply(x[i], op.a(), op.b());
    }
    assertClose(op.name(), expected, toFloats(y, N), NEAR_ZERO, op.rel());
  }

  @Test
  void unaryKeepsNanAndSignedZero() {
    float[] x = {Float.NaN, 0f, -0f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY};
    MemorySegment input = support.segmentOf(x);
    MemorySegment y = support.floats(x.length);
    // RELU, SIGN and CLAMP keep NaN; SIGN keeps the sign of zero, as Math.signum does. RELU_GRAD
    // is 1 at NaN, so that the gradient passes, as in PyTorch.
    int[] codes = {11, 5, 9, 12};
    double[][] expected = {
      {Double.NaN, 0, 0, 0, Double.POSITIVE_INFINITY},
      {Double.NaN, 0, -0.0, -1, 1},
      {Double.NaN, 0, 0, -1, 1},
      {1, 0, 0, 0, 1}
    };
    String[] names = {"RELU", "SIGN", "CLAMP to [-1, 1]", "RELU_GRAD"};
    for (int c = 0; c < codes.length; c++) {
      kernels.launch(
          "kiln_elementwise_unary",
          Dim3.of(1),
          Dim3.of(32),
          0,
          input,
          y,
          x.length,
          codes[c],
          -1f,
          1f);
      assertClose(names[c], expected[c], toFloats(y, x.length), 0, 0);
    }

    // assertClose treats 0 and -0 as equal, so check the sign bit of SIGN(-0) on its own.
    kernels.launch(
        "kiln_elementwise_unary", Dim3.of(1), Dim3.of(32), 0, input, y, x.length, 5, 0f, 0f);
    assertEquals(
        Float.floatToRawIntBits(-0f),
        Float.floatToRawIntBits(toFloats(y, x.length)[2]),
        "SIGN(-0) must be -0");
  }

  @Test
  void unaryRunsInPlaceWithSmallGrid() {
    float[] x = support.randomFloats(N, -3, 3);
    MemorySegment data = support.segmentOf(x);
    // Two blocks for N elements: each thread walks the grid-stride loop about twice.
    kernels.launch(
        "kiln_elementwise_unary", Dim3.of(2), Dim3.of(BLOCK), 0, data, data, N, 0, 0f, 0f);

    double[] expected = new double[N];
    for (int i = 0; i < N; i++) {
      expected[i] = -x[i];
    }
    assertClose("NEG in place", expected, toFloats(data, N), 0, 0);
  }

  /** One activation gradient: its code, whether it reads the forward output, and parameters. */
  record BackwardCase(
      String name, int forward, int gradient, boolean fromOutput, float a, float b) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<BackwardCase> backwardCases() {
    return Stream.of(
        new BackwardCase("RELU", 11, 12, false, 0, 0),
        new BackwardCase("LEAKY_RELU", 13, 14, false, 0.02f, 0),
        new BackwardCase("ELU", 15, 16, false, 0.9f, 0),
        new BackwardCase("CLAMP", 9, 10, false, -0.5f, 0.5f),
        new BackwardCase("TANH", 17, 18, true, 0, 0),
        new BackwardCase("SIGMOID", 19, 20, true, 0, 0));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("backwardCases")
  void backwardMultipliesGradient(BackwardCase op) {
    float[] x = support.randomFloats(N, -3, 3);
    float[] gradOut = support.randomFloats(N);
    MemorySegment input = support.segmentOf(x);
    MemorySegment output = support.floats(N);
    kernels.launch(
        "kiln_elementwise_unary",
        grid(N),
        Dim3.of(BLOCK),
        0,
        input,
        output,
        N,
        op.forward(),
        op.a(),
        op.b());
    MemorySegment gradIn = support.floats(N);
    kernels.launch(
        "kiln_elementwise_unary_backward",
        grid(N),
        Dim3.of(BLOCK),
        0,
        support.segmentOf(gradOut),
        op.fromOutput() ? output : input,
        gradIn,
        N,
        op.gradient(),
        op.a(),
        op.b());

    float[] y = toFloats(output, N);
    double[] expected = new double[N];
    for (int i = 0; i < N; i++) {
      expected[i] = gradOut[i] * derivative(op.name(), x[i], y[i], op.a(), op.b());
    }
    // The derivative itself may take a transcendental function, then one product rounds.
    assertClose(op.name() + " backward", expected, toFloats(gradIn, N), NEAR_ZERO, TRANSCENDENTAL);
  }

  /**
   * ReLU's backward selects as PyTorch's threshold_backward does: +0 where the input is at most 0,
   * even for a NaN, infinite or negative-zero gradient, and the gradient elsewhere, NaN input
   * included.
   */
  @Test
  void reluBackwardStopsNanAtDeadUnit() {
    float[] x = {-1f, 0f, -0f, -2f, Float.NaN, 2f, 2f};
    float[] gradOut = {Float.NaN, Float.POSITIVE_INFINITY, -5f, -0f, 3f, -0f, Float.NaN};
    MemorySegment gradIn = support.floats(x.length);

    kernels.launch(
        "kiln_elementwise_unary_backward",
        Dim3.of(1),
        Dim3.of(32),
        0,
        support.segmentOf(gradOut),
        support.segmentOf(x),
        gradIn,
        x.length,
        12,
        0f,
        0f);

    float[] expected = {0f, 0f, 0f, 0f, 3f, -0f, Float.NaN};
    float[] actual = toFloats(gradIn, x.length);
    for (int i = 0; i < x.length; i++) {
      assertEquals(
          Float.floatToIntBits(expected[i]),
          Float.floatToIntBits(actual[i]),
          "x=" + x[i] + ", gradient " + gradOut[i] + ": got " + actual[i]);
    }
  }

  /** Returns the derivative that UnaryOp's *_GRAD lambda gives, from the input x or output y. */
  private static double derivative(String name, double x, double y, double a, double b) {
    return switch (name) {
      case "RELU" -> x > 0 ? 1 : 0;
      case "LEAKY_RELU" -> x > 0 ? 1 : a;
      case "ELU" -> x > 0 ? 1 : a * Math.exp(x);
      case "CLAMP" -> x >= a && x <= b ? 1 : 0;
      case "TANH" -> 1 - y * y;
      case "SIGMOID" -> y * (1 - y);
      default -> throw new IllegalArgumentException("no derivative for " + name);
    };
  }

  /** The binary ops, in BinaryOp's order, as double functions. */
  private static final String[] BINARY_NAMES = {
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "GREATER", "EQUAL"
  };

  private static double binary(int code, double x, double y) {
    return switch (code) {
      case 0 -> x + y;
      case 1 -> x - y;
      case 2 -> x * y;
      case 3 -> x / y;
      case 4 -> Math.max(x, y);
      case 5 -> x > y ? 1 : 0;
      case 6 -> x == y ? 1 : 0;
      default -> throw new IllegalArgumentException("unknown binary code " + code);
    };
  }

  @Test
  void binarySameShapeMatchesReference() {
    float[] x = support.randomFloats(N, -2, 2);
    float[] y = support.randomFloats(N, -2, 2);
    // Equal pairs and NaN exercise EQUAL and MAXIMUM's NaN rule.
    for (int i = 0; i < N; i += 7) {
      y[i] = x[i];
    }
    x[11] = Float.NaN;
    y[12] = Float.NaN;
    MemorySegment out = support.floats(N);
    for (int code = 0; code < BINARY_NAMES.length; code++) {
      kernels.launch(
          "kiln_elementwise_binary",
          grid(N),
          Dim3.of(BLOCK),
          0,
          support.segmentOf(x),
          support.segmentOf(y),
          out,
          N,
          code);
      double[] expected = new double[N];
      for (int i = 0; i < N; i++) {
        expected[i] = binary(code, x[i], y[i]);
      }
      assertClose(BINARY_NAMES[code], expected, toFloats(out, N), 0, ONE_ROUNDING);
    }
  }

  @Test
  void binaryBroadcastsBothInputs() {
    // x [3, 1, 7] and y [5, 1] broadcast to [3, 5, 7]; y aligns to [1, 5, 1].
    checkBroadcast(new int[] {3, 1, 7}, new int[] {1, 5, 1}, new int[] {3, 5, 7});
  }

  @Test
  void binaryBroadcastsScalarAndRow() {
    checkBroadcast(new int[] {1, 1}, new int[] {1, 13}, new int[] {11, 13});
    checkBroadcast(new int[] {2, 9, 1, 5}, new int[] {2, 1, 3, 5}, new int[] {2, 9, 3, 5});
  }

  private void checkBroadcast(int[] xShape, int[] yShape, int[] outShape) {
    int rank = outShape.length;
    int n = product(outShape);
    float[] x = support.randomFloats(product(xShape), -2, 2);
    float[] y = support.randomFloats(product(yShape), 0.5f, 2);
    int[] xStrides = broadcastStrides(xShape, outShape);
    int[] yStrides = broadcastStrides(yShape, outShape);
    int[] geometry = new int[3 * rank];
    for (int d = 0; d < rank; d++) {
      geometry[d] = outShape[d];
      geometry[rank + d] = xStrides[d];
      geometry[2 * rank + d] = yStrides[d];
    }
    MemorySegment out = support.floats(n);
    for (int code = 0; code < BINARY_NAMES.length; code++) {
      kernels.launch(
          "kiln_elementwise_binary_broadcast",
          grid(n),
          Dim3.of(BLOCK),
          0,
          support.segmentOf(x),
          support.segmentOf(y),
          out,
          support.segmentOf(geometry),
          rank,
          n,
          code);

      double[] expected = new double[n];
      for (int i = 0; i < n; i++) {
        int rest = i;
        int xOffset = 0;
        int yOffset = 0;
        for (int d = rank - 1; d >= 0; d--) {
          int index = rest % outShape[d];
          rest /= outShape[d];
          xOffset += index * xStrides[d];
          yOffset += index * yStrides[d];
        }
        expected[i] = binary(code, x[xOffset], y[yOffset]);
      }
      assertClose(
          BINARY_NAMES[code] + " broadcast to " + java.util.Arrays.toString(outShape),
          expected,
          toFloats(out, n),
          0,
          ONE_ROUNDING);
    }
  }

  /** Row-major strides of shape, with 0 where a size-1 dimension stretches to the output. */
  private static int[] broadcastStrides(int[] shape, int[] outShape) {
    int[] strides = new int[shape.length];
    int stride = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      strides[d] = shape[d] == 1 && outShape[d] != 1 ? 0 : stride;
      stride *= shape[d];
    }
    return strides;
  }

  private static int product(int[] shape) {
    int product = 1;
    for (int size : shape) {
      product *= size;
    }
    return product;
  }

  private static Dim3 grid(int n) {
    return Dim3.of(Dim3.blocksFor(n, BLOCK));
  }
}
