package dev.kiln.keypoints.data;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/** Writers of small test images in memory and on disk. */
final class TestImages {

  /**
   * Side of the square test images. They hold four flat 16x16 quadrants, so every JPEG MCU (16x16
   * with 4:2:0 chroma subsampling) and every 8x8 DCT block is uniform.
   */
  static final int SIZE = 32;

  private TestImages() {}

  /** Returns the quadrant index 0..3 of pixel (x, y): 0 top-left, 1 top-right, 2, 3 below. */
  static int quadrant(int x, int y) {
    return (x < SIZE / 2 ? 0 : 1) + (y < SIZE / 2 ? 0 : 2);
  }

  /** Returns the PNG encoding of {@code image}. */
  static byte[] png(BufferedImage image) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      if (!ImageIO.write(image, "png", out)) {
        throw new IllegalStateException("no PNG writer for " + image);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** Returns the JPEG encoding of {@code image} at quality 1.0. */
  static byte[] jpeg(BufferedImage image) {
    return writeJpeg(new IIOImage(image, null, null));
  }

  /** Returns the JPEG encoding of a raw raster at quality 1.0, with no color conversion. */
  static byte[] jpeg(Raster raster) {
    return writeJpeg(new IIOImage(raster, null, null));
  }

  private static byte[] writeJpeg(IIOImage image) {
    ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
    ImageWriteParam param = writer.getDefaultWriteParam();
    param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
    param.setCompressionQuality(1.0f);

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ImageOutputStream stream = ImageIO.createImageOutputStream(out)) {
      writer.setOutput(stream);
      writer.write(null, image, param);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      writer.dispose();
    }
    return out.toByteArray();
  }

  /** Returns {@code jpeg} with an Adobe APP14 marker carrying {@code transform} after SOI. */
  static byte[] withAdobeMarker(byte[] jpeg, int transform) {
    byte[] segment = {
      (byte) 0xff, (byte) 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, (byte) transform
    };
    byte[] out = new byte[jpeg.length + segment.length];
    System.arraycopy(jpeg, 0, out, 0, 2);
    System.arraycopy(segment, 0, out, 2, segment.length);
    System.arraycopy(jpeg, 2, out, 2 + segment.length, jpeg.length - 2);
    return out;
  }

  /** Returns the bit depth from a PNG's IHDR chunk. */
  static int pngBitDepth(byte[] png) {
    return png[24] & 0xff;
  }

  /** Returns the color type from a PNG's IHDR chunk: 0 gray, 2 RGB, 3 palette, 4 gray + alpha. */
  static int pngColorType(byte[] png) {
    return png[25] & 0xff;
  }

  /** Writes {@code bytes} to {@code dir/name} and returns the path. */
  static Path write(Path dir, String name, byte[] bytes) throws IOException {
    Path file = dir.resolve(name);
    Files.write(file, bytes);
    return file;
  }

  /** Returns an 8-bit gray image of the given size with a horizontal ramp from 0 to 255. */
  static BufferedImage grayRamp(int width, int height) {
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        image.getRaster().setSample(x, y, 0, (x * 255) / Math.max(1, width - 1));
      }
    }
    return image;
  }

  /** Returns {@link #grayRamp} as a PNG. */
  static byte[] grayPng(int width, int height) {
    return png(grayRamp(width, height));
  }
}
