package dev.kiln.keypoints.plot;

import dev.kiln.keypoints.io.AtomicFiles;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** PNG output shared by the plot classes: headless setup, canvas creation and atomic writes. */
final class Png {
  static {
    // Plots render into BufferedImages and never open a window, so they must not need a display.
    // A caller that set the property itself keeps its own value.
    if (System.getProperty("java.awt.headless") == null) {
      System.setProperty("java.awt.headless", "true");
    }
  }

  private Png() {}

  /** Creates an opaque RGB image filled with {@code background}. */
  static BufferedImage canvas(int width, int height, Color background) {
    if (width <= 0 || height <= 0) {
      throw new IllegalArgumentException(
          "image size must be positive, got " + width + "x" + height);
    }
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setColor(background);
      g.fillRect(0, 0, width, height);
    } finally {
      g.dispose();
    }
    return image;
  }

  /** Creates a graphics context on {@code image} with antialiased shapes and text. */
  static Graphics2D graphics(BufferedImage image) {
    Graphics2D g = image.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(
        RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
    g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
    g.setRenderingHint(
        RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
    return g;
  }

  /**
   * Writes {@code image} as a PNG to {@code file} atomically: into a temporary file in the same
   * folder, then renamed over {@code file}. Creates missing parent folders.
   */
  static void write(BufferedImage image, Path file) throws IOException {
    AtomicFiles.write(file, temporary -> writeTo(image, temporary));
  }

  /**
   * Writes {@code image} as a PNG to {@code file} directly, for a caller that writes into a
   * temporary file of {@link AtomicFiles}, which names the target when it rethrows a failure.
   */
  static void writeTo(BufferedImage image, Path file) throws IOException {
    if (!ImageIO.write(image, "png", file.toFile())) {
      throw new IOException("no PNG writer is available in this JVM");
    }
  }
}
