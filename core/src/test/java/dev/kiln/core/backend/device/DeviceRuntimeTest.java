package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.ops.UnaryOp;
import dev.kiln.kernels.Dim3;
import dev.kiln.kernels.KernelImage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests the copies, views and error messages of the {@link DeviceRuntime}s and launchers. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceRuntimeTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copiesKeepEveryBit(String device) {
    DeviceRuntime runtime = runtime(device);
    float[] floats = {1.5f, -0.0f, Float.NaN, Float.intBitsToFloat(0x7f800123), Float.MIN_VALUE};
    // Ints whose bits are NaN patterns as floats must survive the float path of the int copies.
    int[] ints = {0, -1, Integer.MIN_VALUE, Integer.MAX_VALUE, 0x7fc00001, 0xffc00000, 42};
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      float[] floatsBack = buffers.read(buffers.of(floats), floats.length);
      for (int i = 0; i < floats.length; i++) {
        assertEquals(
            Float.floatToRawIntBits(floats[i]),
            Float.floatToRawIntBits(floatsBack[i]),
            "float " + i + " after a round trip through " + device);
      }
      assertArrayEquals(
          ints, buffers.readInts(buffers.of(ints), ints.length), "ints through " + device);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sliceAddressesPartOfABuffer(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer whole = buffers.of(new float[] {1, 2, 3, 4, 5, 6});
      // Negate floats 2..4 only, through a view that starts in the middle of the buffer.
      DeviceBuffer middle = DeviceRuntime.slice(whole, 2, 3);
      elementwise.unary(UnaryOp.NEG, 0, 0, middle, middle, 3);
      assertArrayEquals(new float[] {1, 2, -3, -4, -5, 6}, buffers.read(whole, 6));

      IllegalArgumentException error =
          assertThrows(IllegalArgumentException.class, () -> DeviceRuntime.slice(whole, 4, 1000));
      assertTrue(error.getMessage().contains("floats [4, 1004)"), error.getMessage());
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void launchersRejectBuffersThatAreTooSmall(String device) {
    DeviceRuntime runtime = runtime(device);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer small = runtime.allocator().allocate(8);
      try {
        IllegalArgumentException error =
            assertThrows(
                IllegalArgumentException.class,
                () -> new DeviceElementwise(runtime).unary(UnaryOp.EXP, 0, 0, small, small, 1000));
        assertTrue(error.getMessage().startsWith("unary input holds"), error.getMessage());
      } finally {
        runtime.free(small);
      }
    }
  }

  @Test
  void cudaWithoutFatbinSaysWhatToDo() {
    assumeTrue(
        KernelImage.fatbin().isEmpty(),
        "not applicable: it checks CudaRuntime's error for a kernels jar without kiln.fatbin,"
            + " and this kernels jar contains one");
    IllegalStateException error =
        assertThrows(IllegalStateException.class, () -> CudaRuntime.open(0));
    assertTrue(
        error.getMessage().startsWith("cannot run kiln's kernels on cuda:0"), error.getMessage());
    assertTrue(error.getMessage().contains("Rebuild the kernels module"), error.getMessage());
  }

  @Test
  void emulatedRejectsFreedBuffer() {
    try (EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20)) {
      DeviceBuffer buffer = runtime.allocator().allocate(64 * Float.BYTES);
      runtime.free(buffer);

      IllegalStateException launch =
          assertThrows(
              IllegalStateException.class,
              () -> new DeviceElementwise(runtime).unary(UnaryOp.NEG, 0, 0, buffer, buffer, 64));
      IllegalStateException copy =
          assertThrows(
              IllegalStateException.class,
              () -> runtime.copyToHost(buffer, 0, new float[64], 0, 64));

      assertTrue(
          launch.getMessage().contains("argument 0 of kiln_elementwise_unary"),
          launch.getMessage());
      assertTrue(launch.getMessage().contains("it was freed"), launch.getMessage());
      assertTrue(
          copy.getMessage().startsWith("the source of a copy to the host"), copy.getMessage());
    }
  }

  @Test
  void emulatedRejectsUseAfterClose() {
    EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20);
    runtime.close();

    IllegalStateException allocate =
        assertThrows(IllegalStateException.class, () -> runtime.allocator().allocate(16));
    IllegalStateException launch =
        assertThrows(
            IllegalStateException.class,
            () -> runtime.launch("kiln_elementwise_unary", Dim3.of(1), Dim3.of(32), 0));

    assertTrue(allocate.getMessage().contains("is closed"), allocate.getMessage());
    assertTrue(launch.getMessage().contains("is closed"), launch.getMessage());
  }

  @Test
  void emulatedDeviceIsNamedEmulated() {
    assertEquals("emulated", runtime("emulated").name());
  }
}
