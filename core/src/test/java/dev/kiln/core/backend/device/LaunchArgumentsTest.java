package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.kernels.Dim3;
import java.util.Optional;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tests how {@link DeviceRuntime#launch} treats null pointers: a bare {@code null} is rejected
 * before the kernel runs, and an empty {@link Optional} reaches the kernel as a null pointer.
 */
@ExtendWith(SkipUnusableCuda.class)
class LaunchArgumentsTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** Launches the negation kernel over 4 elements of {@code x} into {@code out}. */
  private static void negate(DeviceRuntime runtime, DeviceBuffer x, DeviceBuffer out) {
    int code = DeviceElementwise.code(UnaryOp.NEG);
    runtime.launch("kiln_elementwise_unary", Dim3.of(1), Dim3.of(32), 0, x, out, 4, code, 0f, 0f);
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void nullRequiredInputIsRejected(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.of(new float[] {7, 7, 7, 7});

      // Without the check, the emulated kernel reads through address 0 and the JVM dies.
      IllegalArgumentException error =
          assertThrows(IllegalArgumentException.class, () -> negate(runtime, null, out));

      assertTrue(
          error.getMessage().startsWith("argument 0 of kernel kiln_elementwise_unary is null"),
          error.getMessage());
      assertTrue(error.getMessage().contains("Optional.ofNullable"), error.getMessage());
      assertArrayEquals(new float[] {7, 7, 7, 7}, buffers.read(out, 4), "output was untouched");
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void nullRequiredOutputIsRejected(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(new float[] {1, 2, 3, 4});

      IllegalArgumentException error =
          assertThrows(IllegalArgumentException.class, () -> negate(runtime, x, null));

      assertTrue(
          error.getMessage().startsWith("argument 1 of kernel kiln_elementwise_unary is null"),
          error.getMessage());
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void emptyOptionalIsPassedAsAbsent(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      // kiln_optimizers_sgd reads a null momentum buffer as "plain SGD".
      DeviceBuffer param = buffers.of(new float[] {1, 2});
      DeviceBuffer grad = buffers.of(new float[] {10, 20});
      runtime.launch(
          "kiln_optimizers_sgd",
          Dim3.of(1),
          Dim3.of(32),
          0,
          param,
          grad,
          Optional.empty(),
          2,
          0.5f,
          0f,
          0f,
          0f,
          0,
          1);

      assertArrayEquals(new float[] {-4, -8}, buffers.read(param, 2), "param - 0.5 * grad");
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void optionalHoldingBufferIsPassed(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer x = buffers.of(new float[] {1, -2});
      DeviceBuffer out = buffers.of(new float[] {0, 0});
      runtime.launch(
          "kiln_elementwise_unary",
          Dim3.of(1),
          Dim3.of(32),
          0,
          Optional.of(x),
          out,
          2,
          DeviceElementwise.code(UnaryOp.NEG),
          0f,
          0f);

      assertArrayEquals(new float[] {-1, 2}, buffers.read(out, 2), "negated through an Optional");
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void optionalOfNonBufferIsRejected(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer out = buffers.of(new float[] {0});

      IllegalArgumentException error =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  runtime.launch(
                      "kiln_elementwise_unary",
                      Dim3.of(1),
                      Dim3.of(32),
                      0,
                      Optional.of(3),
                      out,
                      1,
                      0,
                      0f,
                      0f));

      assertTrue(
          error.getMessage().startsWith("argument 0 of kernel kiln_elementwise_unary"),
          error.getMessage());
      assertTrue(error.getMessage().contains("java.lang.Integer"), error.getMessage());
    }
  }
}
