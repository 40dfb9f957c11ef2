package dev.kiln.keypoints.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

/**
 * Structural check of a PNG file: every chunk up to IEND must fit in the file and match its CRC.
 * ImageIO's PNG reader skips CRCs and may decode a cut file without error, so the decoder runs this
 * check first.
 */
final class PngChunks {

  private static final int SIGNATURE_LENGTH = 8;

  private PngChunks() {}

  /**
   * Throws an {@link IOException} naming {@code source} if the chunk list is truncated or corrupt.
   */
  static void check(String source, byte[] bytes) throws IOException {
    int offset = SIGNATURE_LENGTH;
    boolean first = true;

    while (true) {
      if (offset + 8 > bytes.length) {
        throw truncated(
            source, bytes, "it ends at byte " + bytes.length + " before the IEND chunk");
      }

      long length = readUnsignedInt(bytes, offset);
      String type = new String(bytes, offset + 4, 4, StandardCharsets.ISO_8859_1);
      if (first && !type.equals("IHDR")) {
        throw new IOException(
            source
                + ": corrupt PNG: the first chunk is '"
                + type
                + "', not IHDR; replace the file");
      }
      first = false;

      long end = offset + 12 + length;
      if (end > bytes.length) {
        throw truncated(
            source,
            bytes,
            "chunk '"
                + type
                + "' at byte "
                + offset
                + " needs "
                + (12 + length)
                + " bytes but only "
                + (bytes.length - offset)
                + " remain");
      }

      CRC32 crc = new CRC32();
      crc.update(bytes, offset + 4, (int) (4 + length));
      long stored = readUnsignedInt(bytes, (int) (end - 4));
      if (crc.getValue() != stored) {
        throw new IOException(
            source
                + ": corrupt PNG: CRC mismatch in chunk '"
                + type
                + "' at byte "
                + offset
                + "; replace the file with an intact copy");
      }

      if (type.equals("IEND")) {
        return;
      }
      offset = (int) end;
    }
  }

  private static IOException truncated(String source, byte[] bytes, String detail) {
    return new IOException(
        source
            + ": truncated PNG ("
            + bytes.length
            + " bytes): "
            + detail
            + "; copy the file again, or leave it out");
  }

  private static long readUnsignedInt(byte[] bytes, int offset) {
    return ((bytes[offset] & 0xffL) << 24)
        | ((bytes[offset + 1] & 0xffL) << 16)
        | ((bytes[offset + 2] & 0xffL) << 8)
        | (bytes[offset + 3] & 0xffL);
  }
}
