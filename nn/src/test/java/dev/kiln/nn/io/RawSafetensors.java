package dev.kiln.nn.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Builds safetensors files byte by byte, so tests can write headers that the writer never would.
 */
final class RawSafetensors {
  private RawSafetensors() {}

  /** Returns the 8-byte little-endian length of {@code header}, the header in UTF-8, then data. */
  static byte[] bytes(String header, byte[] data) {
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    return bytes(json.length, json, data);
  }

  /** Returns {@code declaredLength} as the length prefix, whatever the header's real length. */
  static byte[] bytes(long declaredLength, byte[] header, byte[] data) {
    ByteBuffer buffer =
        ByteBuffer.allocate(Long.BYTES + header.length + data.length)
            .order(ByteOrder.LITTLE_ENDIAN);
    buffer.putLong(declaredLength).put(header).put(data);
    return buffer.array();
  }

  /** Writes a file with {@code header} and {@code data} into {@code folder}. */
  static Path write(Path folder, String fileName, String header, byte[] data) throws IOException {
    return Files.write(folder.resolve(fileName), bytes(header, data));
  }

  /** Returns {@code count} zero bytes. */
  static byte[] zeros(int count) {
    return new byte[count];
  }

  /** Returns little-endian 16-bit values, as F16 or BF16 data. */
  static byte[] shorts(int... values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int value : values) {
      buffer.putShort((short) value);
    }
    return buffer.array();
  }
}
