package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.DeviceBuffer;

/**
 * Range checks of the copies between Java arrays and device buffers. Both runtimes make them before
 * a copy, so a wrong index or count is reported the same way on either device, with the buffer's
 * address and size and the requested range. Indices and counts are in floats.
 */
final class CopyRanges {

  private CopyRanges() {}

  /**
   * Checks that floats [index, index + count) lie inside {@code buffer}.
   *
   * @param role what the buffer is to the copy, such as "the target of a copy to the device"
   * @throws IndexOutOfBoundsException naming the buffer, its size and the requested range
   */
  static void requireDeviceRange(String role, DeviceBuffer buffer, long index, long count) {
    long floats = buffer.bytes() / Float.BYTES;
    if (index < 0 || count < 0 || index > floats - count) {
      throw new IndexOutOfBoundsException(
          String.format(
              "%s is the buffer at %s of %d bytes (%d floats), which has no %d floats at float"
                  + " index %d: the index and count must be 0 or more and their sum at most %d,"
                  + " so allocate a larger buffer or copy fewer floats",
              role, buffer.hexAddress(), buffer.bytes(), floats, count, index, floats));
    }
  }

  /**
   * Checks that elements [index, index + count) lie inside a host array of {@code length} floats.
   *
   * @throws IndexOutOfBoundsException naming the array's length and the requested range
   */
  static void requireArrayRange(String role, int length, int index, int count) {
    if (index < 0 || count < 0 || index > length - count) {
      throw new IndexOutOfBoundsException(
          String.format(
              "%s is a host array of length %d, which has no %d floats at index %d: pass a longer"
                  + " array or copy fewer floats",
              role, length, count, index));
    }
  }

  /** Returns {@code role} extended by the copy's size and float index, for messages. */
  static String describe(String role, long count, long index) {
    return role + " of " + count + " floats at float index " + index;
  }
}
