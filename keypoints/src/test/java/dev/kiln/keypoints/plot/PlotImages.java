package dev.kiln.keypoints.plot;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** Helpers that read back the PNGs the plot tests write. */
final class PlotImages {
  private PlotImages() {}

  /** Decodes {@code file}, failing with its path when ImageIO cannot read it. */
  static BufferedImage read(Path file) throws IOException {
    BufferedImage image = ImageIO.read(file.toFile());
    if (image == null) {
      throw new IOException(file + " is not an image ImageIO can decode");
    }
    return image;
  }

  /** Returns the number of pixels whose colour differs from the pixel at (0, 0). */
  static long pixelsUnlikeCorner(BufferedImage image) {
    int background = image.getRGB(0, 0);
    long count = 0;
    for (int y = 0; y < image.getHeight(); y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        if (image.getRGB(x, y) != background) {
          count++;
        }
      }
    }
    return count;
  }

  /** Returns the number of pixels with exactly the colour {@code rgb}, ignoring alpha. */
  static long pixelsOfColor(BufferedImage image, int rgb) {
    long count = 0;
    for (int y = 0; y < image.getHeight(); y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        if ((image.getRGB(x, y) & 0xFFFFFF) == (rgb & 0xFFFFFF)) {
          count++;
        }
      }
    }
    return count;
  }
}
