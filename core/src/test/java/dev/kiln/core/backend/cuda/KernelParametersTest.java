package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.kernels.Dim3;
import org.junit.jupiter.api.Test;

/**
 * Tests the Java side of kernel arguments and device pointers, which needs no driver: packing the
 * arguments, and the conversion between raw addresses and JCuda pointers.
 */
class KernelParametersTest {

  @Test
  void rawPointerKeepsAddress() {
    long address = 0x7f12_3456_7800L;

    assertEquals(address, new RawDevicePointer(address).address());
    assertEquals(0, new RawDevicePointer().address());
  }

  @Test
  void supportedArgumentsPack() {
    DeviceBuffer buffer = new DeviceBuffer(0x1000, 512);

    assertDoesNotThrow(
        () ->
            CudaModule.kernelParameters(
                "k", buffer, new RawDevicePointer(0x2000), 1, 2L, 3.0f, 4.0));
  }

  @Test
  void shortAndByteAreRejected() {
    // kiln_cuda.h allows no short or char parameters, so a Short or Byte is a launcher's mistake.
    for (Object value : new Object[] {(short) 5, (byte) 6}) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> CudaModule.kernelParameters("k", value));
      assertTrue(e.getMessage().contains("argument 0 of kernel k has type"), e.getMessage());
    }
  }

  @Test
  void nullArgumentIsRejected() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> CudaModule.kernelParameters("relu_forward", 1, null));
    assertEquals("argument 1 of kernel relu_forward is null", e.getMessage());
  }

  @Test
  void unsupportedArgumentNamesType() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> CudaModule.kernelParameters("relu_forward", new float[4]));
    assertTrue(e.getMessage().contains("argument 0 of kernel relu_forward has type [F"));
    assertTrue(e.getMessage().contains("pass a DeviceBuffer or CUdeviceptr"));
  }

  @Test
  void dim3RejectsZeroExtent() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Dim3.of(0, 4));
    assertTrue(e.getMessage().contains("(0, 4, 1)"), e.getMessage());
    assertEquals(24, new Dim3(2, 3, 4).volume());
  }

  @Test
  void deviceBufferRejectsNullAddress() {
    assertThrows(IllegalArgumentException.class, () -> new DeviceBuffer(0, 512));
    assertEquals("0xff00", new DeviceBuffer(0xff00, 512).hexAddress());
  }
}
