package dev.kiln.keypoints.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;

/**
 * Conversion of decoded rasters to gray with ITU-R BT.601 luma. Works on the stored samples, not on
 * {@link BufferedImage#getRGB}, because getRGB maps Java's linear gray color space through a gamma
 * curve and would brighten gray images.
 */
final class GrayConversion {

  static final double RED_WEIGHT = 0.299;
  static final double GREEN_WEIGHT = 0.587;
  static final double BLUE_WEIGHT = 0.114;

  private GrayConversion() {}

  /** Converts an image read by ImageIO, rejecting color models other than gray, RGB and palette. */
  static GrayImage fromBufferedImage(String source, BufferedImage image) throws IOException {
    ColorModel model = image.getColorModel();
    Raster raster = image.getRaster();

    if (model instanceof IndexColorModel palette) {
      return fromPalette(raster, palette);
    }

    if (model instanceof ComponentColorModel && isIntegerType(raster.getTransferType())) {
      int type = model.getColorSpace().getType();
      int colors = model.getNumColorComponents();
      if (type == ColorSpace.TYPE_GRAY && colors == 1) {
        return fromComponents(raster, model, false);
      }
      if (type == ColorSpace.TYPE_RGB && colors == 3) {
        return fromComponents(raster, model, true);
      }
    }

    throw new IOException(
        source
            + ": unsupported color model ("
            + model.getClass().getSimpleName()
            + " with "
            + model.getNumComponents()
            + " components, color space type "
            + model.getColorSpace().getType()
            + "); convert the image to 8-bit gray or RGB");
  }

  /**
   * Converts the 4 raw bands of a CMYK or YCCK JPEG. With an Adobe APP14 marker the samples are
   * stored inverted (255 means no ink), as Photoshop writes them and libjpeg and PIL assume.
   * Without the marker they are plain ink amounts. YCCK bands first go through the JFIF YCbCr to
   * RGB transform, and {@code 255 - R} then gives the stored cyan sample (likewise M and Y), the
   * rule libjpeg's YCCK to CMYK converter uses; K passes through unchanged.
   */
  static GrayImage fromCmykRaster(Raster raster, boolean adobeInverted, boolean ycck) {
    int width = raster.getWidth();
    int height = raster.getHeight();
    GrayImage image = GrayImage.blank(width, height);
    float[] pixels = image.pixels();
    int[][] bands = new int[4][width];

    for (int y = 0; y < height; y++) {
      for (int b = 0; b < 4; b++) {
        raster.getSamples(raster.getMinX(), raster.getMinY() + y, width, 1, b, bands[b]);
      }

      for (int x = 0; x < width; x++) {
        double c = bands[0][x];
        double m = bands[1][x];
        double yellow = bands[2][x];
        double k = bands[3][x];

        if (ycck) {
          double luma = c;
          double cb = m - 128;
          double cr = yellow - 128;
          c = 255 - clamp(luma + 1.402 * cr);
          m = 255 - clamp(luma - 0.344136 * cb - 0.714136 * cr);
          yellow = 255 - clamp(luma + 1.772 * cb);
        }

        // Fraction of light each channel lets through: 1 for no ink, 0 for full ink.
        double clearC = adobeInverted ? c / 255 : 1 - c / 255;
        double clearM = adobeInverted ? m / 255 : 1 - m / 255;
        double clearY = adobeInverted ? yellow / 255 : 1 - yellow / 255;
        double clearK = adobeInverted ? k / 255 : 1 - k / 255;

        double red = clearC * clearK;
        double green = clearM * clearK;
        double blue = clearY * clearK;
        pixels[y * width + x] = (float) luma(red, green, blue);
      }
    }
    return image;
  }

  static double luma(double red, double green, double blue) {
    return RED_WEIGHT * red + GREEN_WEIGHT * green + BLUE_WEIGHT * blue;
  }

  private static GrayImage fromPalette(Raster raster, IndexColorModel palette) {
    int size = palette.getMapSize();
    float[] table = new float[size];
    for (int i = 0; i < size; i++) {
      table[i] =
          (float)
              luma(
                  palette.getRed(i) / 255.0,
                  palette.getGreen(i) / 255.0,
                  palette.getBlue(i) / 255.0);
    }

    int width = raster.getWidth();
    int height = raster.getHeight();
    GrayImage image = GrayImage.blank(width, height);
    float[] pixels = image.pixels();
    int[] row = new int[width];
    for (int y = 0; y < height; y++) {
      raster.getSamples(raster.getMinX(), raster.getMinY() + y, width, 1, 0, row);
      for (int x = 0; x < width; x++) {
        pixels[y * width + x] = table[row[x]];
      }
    }
    return image;
  }

  private static GrayImage fromComponents(Raster raster, ColorModel model, boolean rgb) {
    int width = raster.getWidth();
    int height = raster.getHeight();
    GrayImage image = GrayImage.blank(width, height);
    float[] pixels = image.pixels();
    int bandCount = rgb ? 3 : 1;
    int[][] bands = new int[bandCount][width];
    double[] scale = new double[bandCount];
    for (int b = 0; b < bandCount; b++) {
      scale[b] = 1.0 / ((1L << model.getComponentSize(b)) - 1);
    }

    for (int y = 0; y < height; y++) {
      for (int b = 0; b < bandCount; b++) {
        raster.getSamples(raster.getMinX(), raster.getMinY() + y, width, 1, b, bands[b]);
      }
      for (int x = 0; x < width; x++) {
        double value =
            rgb
                ? luma(bands[0][x] * scale[0], bands[1][x] * scale[1], bands[2][x] * scale[2])
                : bands[0][x] * scale[0];
        pixels[y * width + x] = (float) value;
      }
    }
    return image;
  }

  private static boolean isIntegerType(int transferType) {
    return transferType == DataBuffer.TYPE_BYTE
        || transferType == DataBuffer.TYPE_USHORT
        || transferType == DataBuffer.TYPE_INT;
  }

  private static double clamp(double sample) {
    return Math.max(0, Math.min(255, Math.round(sample)));
  }
}
