package dev.kiln.keypoints.data;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.DeflaterOutputStream;

/**
 * Writers of small files that declare huge or extreme image sizes, as an attacker would send them.
 * Every file is built in memory at run time, so the repository contains none of them.
 */
public final class HostileImages {

  private HostileImages() {}

  /**
   * Returns an 8-bit gray PNG of {@code width × height} black pixels with complete image data. Zero
   * rows compress about 1000 to 1, so a 1x200000 image takes under 1 KB.
   */
  public static byte[] blackPng(int width, int height) {
    ByteArrayOutputStream compressed = new ByteArrayOutputStream();
    try (DeflaterOutputStream deflater = new DeflaterOutputStream(compressed)) {
      byte[] row = new byte[1 + width]; // filter type 0, then the samples
      for (int y = 0; y < height; y++) {
        deflater.write(row);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return png(width, height, compressed.toByteArray());
  }

  /**
   * Returns a PNG whose header declares {@code width × height} 8-bit gray pixels but whose image
   * data contains at most one row. The chunk structure and CRCs are valid, so only decoding the
   * pixels shows that data is missing.
   */
  public static byte[] pngHeaderOnly(int width, int height) {
    ByteArrayOutputStream compressed = new ByteArrayOutputStream();
    try (DeflaterOutputStream deflater = new DeflaterOutputStream(compressed)) {
      deflater.write(new byte[1 + Math.min(width, 1 << 16)]);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return png(width, height, compressed.toByteArray());
  }

  /**
   * Returns a valid 32x32 baseline JPEG whose frame header is patched to declare {@code width ×
   * height} pixels, which the scan data does not contain.
   */
  public static byte[] jpegDeclaring(int width, int height) {
    BufferedImage image = new BufferedImage(32, 32, BufferedImage.TYPE_3BYTE_BGR);
    byte[] jpeg = TestImages.jpeg(image);
    for (int i = 0; i + 8 < jpeg.length; i++) {
      if ((jpeg[i] & 0xff) == 0xff && (jpeg[i + 1] & 0xff) == 0xc0) {
        // SOF0: marker, length (2 bytes), precision (1), height (2), width (2).
        jpeg[i + 5] = (byte) (height >>> 8);
        jpeg[i + 6] = (byte) height;
        jpeg[i + 7] = (byte) (width >>> 8);
        jpeg[i + 8] = (byte) width;
        return jpeg;
      }
    }
    throw new IllegalStateException("the JPEG writer wrote no SOF0 marker");
  }

  private static byte[] png(int width, int height, byte[] imageData) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});

    ByteBuffer header = ByteBuffer.allocate(13);
    header.putInt(width).putInt(height);
    header.put((byte) 8); // bit depth
    header.put((byte) 0); // color type: gray
    header.put((byte) 0); // compression method
    header.put((byte) 0); // filter method
    header.put((byte) 0); // no interlacing
    writeChunk(out, "IHDR", header.array());
    writeChunk(out, "IDAT", imageData);
    writeChunk(out, "IEND", new byte[0]);
    return out.toByteArray();
  }

  private static void writeChunk(ByteArrayOutputStream out, String type, byte[] data) {
    byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
    CRC32 crc = new CRC32();
    crc.update(typeBytes);
    crc.update(data);

    out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
    out.writeBytes(typeBytes);
    out.writeBytes(data);
    out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
  }
}
