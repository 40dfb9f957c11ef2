package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tests that a failed copy between the host and a device names the buffer, its size, and the float
 * index and count that were requested, so the caller can find the wrong size.
 */
@ExtendWith(SkipUnusableCuda.class)
class CopyErrorMessagesTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copyToDevicePastEndNamesBuffer(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer buffer = runtime.allocateFloats(16);
    try {
      long floats = buffer.bytes() / Float.BYTES;
      int count = (int) floats;

      IndexOutOfBoundsException error =
          assertThrows(
              IndexOutOfBoundsException.class,
              () -> runtime.copyToDevice(new float[count], 0, buffer, 10, count));

      String message = error.getMessage();
      assertTrue(message.startsWith("the target of a copy to the device"), message);
      assertTrue(message.contains(buffer.hexAddress()), message);
      assertTrue(message.contains(buffer.bytes() + " bytes (" + floats + " floats)"), message);
      assertTrue(message.contains(count + " floats at float index 10"), message);
      assertTrue(message.contains("allocate a larger buffer"), message);
    } finally {
      runtime.free(buffer);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copyToHostPastEndNamesBuffer(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer buffer = runtime.allocateFloats(16);
    try {
      long floats = buffer.bytes() / Float.BYTES;
      float[] host = new float[(int) floats + 8];

      IndexOutOfBoundsException error =
          assertThrows(
              IndexOutOfBoundsException.class,
              () -> runtime.copyToHost(buffer, 0, host, 0, host.length));

      String message = error.getMessage();
      assertTrue(message.startsWith("the source of a copy to the host"), message);
      assertTrue(message.contains(buffer.hexAddress()), message);
      assertTrue(message.contains(buffer.bytes() + " bytes (" + floats + " floats)"), message);
      assertTrue(message.contains(host.length + " floats at float index 0"), message);
    } finally {
      runtime.free(buffer);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void negativeIndexIsRejected(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer buffer = runtime.allocateFloats(16);
    try {
      IndexOutOfBoundsException error =
          assertThrows(
              IndexOutOfBoundsException.class,
              () -> runtime.copyToHost(buffer, -1, new float[4], 0, 4));

      String message = error.getMessage();
      assertTrue(message.startsWith("the source of a copy to the host"), message);
      assertTrue(message.contains("4 floats at float index -1"), message);
    } finally {
      runtime.free(buffer);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void hostArrayTooShortIsNamed(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer buffer = runtime.allocateFloats(64);
    try {
      IndexOutOfBoundsException error =
          assertThrows(
              IndexOutOfBoundsException.class,
              () -> runtime.copyToDevice(new float[8], 4, buffer, 0, 10));

      String message = error.getMessage();
      assertTrue(message.startsWith("the source of a copy to the device"), message);
      assertTrue(message.contains("host array of length 8"), message);
      assertTrue(message.contains("10 floats at index 4"), message);
    } finally {
      runtime.free(buffer);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copyWithinDevicePastEndNamesTarget(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer source = runtime.allocateFloats(256);
    DeviceBuffer target = runtime.allocateFloats(16);
    try {
      long targetFloats = target.bytes() / Float.BYTES;
      long count = targetFloats + 1;

      IndexOutOfBoundsException error =
          assertThrows(
              IndexOutOfBoundsException.class,
              () -> runtime.copyWithinDevice(source, 0, target, 0, count));

      String message = error.getMessage();
      assertTrue(message.startsWith("the target of a copy within the device"), message);
      assertTrue(message.contains(target.hexAddress()), message);
      assertTrue(message.contains(count + " floats at float index 0"), message);
    } finally {
      runtime.free(source);
      runtime.free(target);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void copyThatFitsStillWorks(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceBuffer buffer = runtime.allocateFloats(8);
    try {
      runtime.copyToDevice(new float[] {1, 2, 3}, 0, buffer, 5, 3);
      float[] back = new float[3];
      runtime.copyToHost(buffer, 5, back, 0, 3);

      assertArrayEquals(new float[] {1, 2, 3}, back, "floats 5..7 after a round trip");
    } finally {
      runtime.free(buffer);
    }
  }

  @Test
  void freedBufferCopyNamesRequest() {
    try (EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20)) {
      DeviceBuffer buffer = runtime.allocateFloats(64);
      runtime.free(buffer);

      IllegalStateException toHost =
          assertThrows(
              IllegalStateException.class, () -> runtime.copyToHost(buffer, 3, new float[5], 0, 5));
      IllegalStateException toDevice =
          assertThrows(
              IllegalStateException.class,
              () -> runtime.copyToDevice(new float[5], 0, buffer, 2, 5));

      assertTrue(
          toHost
              .getMessage()
              .startsWith("the source of a copy to the host of 5 floats at float" + " index 3"),
          toHost.getMessage());
      assertTrue(toHost.getMessage().contains(buffer.hexAddress()), toHost.getMessage());
      assertTrue(toHost.getMessage().contains("it was freed"), toHost.getMessage());
      assertTrue(
          toHost.getMessage().contains("until the last kernel or copy that uses it"),
          toHost.getMessage());
      assertTrue(
          toDevice
              .getMessage()
              .startsWith("the target of a copy to the device of 5 floats at" + " float index 2"),
          toDevice.getMessage());
    }
  }
}
