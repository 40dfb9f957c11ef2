package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cpu.ElementwiseKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.ops.BinaryOp;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.core.tensor.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceElementwise} against {@link ElementwiseKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceElementwiseTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** The kernel source whose op-code enums the Java enums must match. */
  private static final Path KERNEL_SOURCE =
      Path.of(System.getProperty("basedir", "."), "..", "kernels", "src", "main", "cuda")
          .resolve("elementwise.cu");

  /**
   * 37 inputs: random values in [-2, 2) and the special cases 0, -0, NaN and infinity, which each
   * op must treat as the CPU does (LOG and SQRT of negatives give NaN on both).
   */
  private static float[] inputs() {
    Random random = new Random(DeviceTestSupport.SEED);
    float[] values = new float[37];
    for (int i = 0; i < values.length; i++) {
      values[i] = random.nextFloat() * 4 - 2;
    }
    values[3] = 0.0f;
    values[7] = -0.0f;
    values[11] = Float.NaN;
    values[13] = Float.POSITIVE_INFINITY;
    return values;
  }

  /** Returns the scalar parameters (a, b) to test an op with. CLAMP needs a &lt; b. */
  private static double[] parameters(UnaryOp op) {
    return switch (op) {
      case POW -> new double[] {1.7, 0};
      case CLAMP, CLAMP_GRAD -> new double[] {-0.3, 0.5};
      case LEAKY_RELU, LEAKY_RELU_GRAD -> new double[] {0.1, 0};
      case ELU, ELU_GRAD -> new double[] {1.3, 0};
      default -> new double[] {0.75, 0};
    };
  }

  @Test
  void opCodesMatchTheKernelSource() throws IOException {
    // The GPU check bundle runs the compiled tests without the sources, so there is nothing to
    // read.
    assumeTrue(
        Files.isRegularFile(KERNEL_SOURCE),
        "the kernel source " + KERNEL_SOURCE + " is not here, so the op codes cannot be compared");
    String source = Files.readString(KERNEL_SOURCE);
    Map<String, Integer> unary = codes(source, "ElementwiseUnaryOp");
    Map<String, Integer> binary = codes(source, "ElementwiseBinaryOp");
    assertEquals(
        UnaryOp.values().length,
        unary.size(),
        "UnaryOp and the kernel's ElementwiseUnaryOp must list the same ops: " + unary.keySet());
    for (UnaryOp op : UnaryOp.values()) {
      assertEquals(
          unary.get("ELEMENTWISE_" + op.name()),
          DeviceElementwise.code(op),
          "UnaryOp." + op + " must have the code of ELEMENTWISE_" + op + " in " + KERNEL_SOURCE);
    }
    assertEquals(BinaryOp.values().length, binary.size(), "binary ops: " + binary.keySet());
    for (BinaryOp op : BinaryOp.values()) {
      assertEquals(
          binary.get("ELEMENTWISE_" + op.name()),
          DeviceElementwise.code(op),
          "BinaryOp." + op + " must have the code of ELEMENTWISE_" + op + " in " + KERNEL_SOURCE);
    }
  }

  /** Reads the NAME = code pairs of one C++ enum from the kernel source. */
  private static Map<String, Integer> codes(String source, String enumName) {
    Matcher body = Pattern.compile("enum " + enumName + "[^{]*\\{([^}]*)}").matcher(source);
    assertTrue(body.find(), "enum " + enumName + " not found in " + KERNEL_SOURCE);
    Map<String, Integer> codes = new LinkedHashMap<>();
    Matcher pair = Pattern.compile("(ELEMENTWISE_\\w+)\\s*=\\s*(\\d+)").matcher(body.group(1));
    while (pair.find()) {
      codes.put(pair.group(1), Integer.parseInt(pair.group(2)));
    }
    return codes;
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void everyUnaryOpMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    float[] x = inputs();
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer input = buffers.of(x);
      DeviceBuffer output = buffers.filled(x.length);
      for (UnaryOp op : UnaryOp.values()) {
        double[] ab = parameters(op);
        elementwise.unary(op, ab[0], ab[1], input, output, x.length);
        Storage expected = f64(x.length);
        ElementwiseKernels.unary(op, (float) ab[0], (float) ab[1], f64(x), expected);
        assertClose(device, "unary " + op, expected, buffers.read(output, x.length), ROUNDED);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void unaryBackwardMultipliesByTheDerivative(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    float[] saved = inputs();
    float[] gradOut = DeviceTestSupport.randomFloats(new Random(1), saved.length);
    UnaryOp[] gradOps = {
      UnaryOp.RELU_GRAD,
      UnaryOp.LEAKY_RELU_GRAD,
      UnaryOp.ELU_GRAD,
      UnaryOp.CLAMP_GRAD,
      UnaryOp.TANH_GRAD,
      UnaryOp.SIGMOID_GRAD
    };
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer grad = buffers.of(gradOut);
      DeviceBuffer input = buffers.of(saved);
      DeviceBuffer result = buffers.filled(saved.length);
      for (UnaryOp op : gradOps) {
        double[] ab = parameters(op);
        elementwise.unaryBackward(op, ab[0], ab[1], grad, input, result, saved.length);
        double[] expected = new double[saved.length];
        for (int i = 0; i < saved.length; i++) {
          expected[i] = (double) gradOut[i] * op.apply(saved[i], (float) ab[0], (float) ab[1]);
        }
        assertClose(
            device, "backward " + op, expected, buffers.read(result, saved.length), ROUNDED);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void everyBinaryOpMatchesTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    float[] x = inputs();
    float[] y = DeviceTestSupport.randomFloats(new Random(2), x.length);
    y[5] = x[5]; // EQUAL and GREATER need a tie
    y[9] = Float.NaN;
    int[] shape = {x.length};
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer left = buffers.of(x);
      DeviceBuffer right = buffers.of(y);
      DeviceBuffer output = buffers.filled(x.length);
      for (BinaryOp op : BinaryOp.values()) {
        elementwise.binary(op, left, right, output, x.length);
        Storage expected = f64(x.length);
        ElementwiseKernels.binary(op, f64(x), shape, f64(y), shape, expected, shape);
        assertClose(device, "binary " + op, expected, buffers.read(output, x.length), ROUNDED);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void broadcastingStretchesBothInputs(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    Random random = new Random(3);
    // x [3, 1, 5] and y [1, 4, 5] broadcast to [3, 4, 5], then a bias-like [1, 4, 1] in place.
    int[] xShape = {3, 1, 5};
    int[] yShape = {1, 4, 5};
    int[] outShape = {3, 4, 5};
    float[] x = DeviceTestSupport.randomFloats(random, 15);
    float[] y = DeviceTestSupport.randomFloats(random, 20);
    float[] bias = DeviceTestSupport.randomFloats(random, 4);
    int[] biasShape = {1, 4, 1};
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.filled(60);
      elementwise.binaryBroadcast(
          BinaryOp.SUB, buffers.of(x), xShape, buffers.of(y), yShape, out, outShape);
      Storage expected = f64(60);
      ElementwiseKernels.binary(BinaryOp.SUB, f64(x), xShape, f64(y), yShape, expected, outShape);
      assertClose(device, "broadcast SUB", expected, buffers.read(out, 60), ROUNDED);

      elementwise.binaryBroadcast(
          BinaryOp.MUL, out, outShape, buffers.of(bias), biasShape, out, outShape);
      Storage scaled = f64(60);
      ElementwiseKernels.binary(
          BinaryOp.MUL, expected, outShape, f64(bias), biasShape, scaled, outShape);
      assertClose(device, "in-place broadcast MUL", scaled, buffers.read(out, 60), ROUNDED);
    }
  }
}
