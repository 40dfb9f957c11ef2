package dev.kiln.keypoints.plot;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.font.TextLayout;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Draws facial keypoints over their image as numbered dots, upscaled so that small crops stay
 * legible, and writes PNGs. With two sets (truth and prediction) each gets its own colour and a
 * line joins each pair of points with the same index.
 */
public final class KeypointOverlay {
  /** Length in pixels of the longer side of an image drawn by {@link #render}. */
  public static final int TARGET_SIZE = 640;

  /** Colour of the first set of points (the truth when there are two). */
  public static final Color FIRST_COLOR = new Color(0x22C55E);

  /** Colour of the second set of points (the prediction). */
  public static final Color SECOND_COLOR = new Color(0xF43F5E);

  private static final Color PAIR_LINE = new Color(255, 214, 10, 200);
  private static final Color SHEET_BACKGROUND = new Color(0x111827);
  private static final int SHEET_TILE = 320;
  private static final int SHEET_CAPTION = 22;

  private KeypointOverlay() {}

  /**
   * Renders {@code image} scaled so its longer side is {@link #TARGET_SIZE} pixels (never shrunk),
   * with {@code points} numbered, and {@code second} as a second set when it is not null.
   *
   * @param points 136 coordinates x0, y0, ..., in the pixel coordinates of {@code image}
   * @param second null, or 136 coordinates of a second set, drawn with lines to {@code points}
   */
  public static BufferedImage render(GrayImage image, double[] points, double[] second) {
    double scale = Math.max(1, (double) TARGET_SIZE / Math.max(image.width(), image.height()));
    int width = (int) Math.round(image.width() * scale);
    int height = (int) Math.round(image.height() * scale);
    BufferedImage canvas = Png.canvas(width, height, Color.BLACK);
    Graphics2D g = Png.graphics(canvas);
    try {
      drawFace(g, image, points, second, 0, 0, scale, 11f, 3.2);
      if (second != null) {
        drawKey(g);
      }
    } finally {
      g.dispose();
    }
    return canvas;
  }

  /** Writes {@code image} with its numbered {@code points} to {@code png}, atomically. */
  public static void write(GrayImage image, double[] points, Path png) throws IOException {
    Png.write(render(image, points, null), png);
  }

  /**
   * Writes {@code image} with its numbered {@code points} to {@code png} directly, not atomically:
   * for the temporary file of an {@link dev.kiln.keypoints.io.AtomicFiles} set.
   */
  public static void writeDirectly(GrayImage image, double[] points, Path png) throws IOException {
    Png.writeTo(render(image, points, null), png);
  }

  /**
   * Writes {@code image} with the numbered {@code truth} and the {@code predicted} points, each
   * pair joined by a line, to {@code png}, atomically.
   */
  public static void write(GrayImage image, double[] truth, double[] predicted, Path png)
      throws IOException {
    Png.write(render(image, truth, predicted), png);
  }

  /**
   * Writes a grid of {@code samples} with their numbered keypoints to {@code png}, atomically: row
   * by row, {@code columns} tiles of 320 × 320 pixels per row, each captioned with the sample's
   * name.
   */
  public static void contactSheet(List<Sample> samples, int columns, Path png) throws IOException {
    if (samples.isEmpty()) {
      throw new IllegalArgumentException("a contact sheet needs at least one sample");
    }
    if (columns < 1) {
      throw new IllegalArgumentException("columns must be at least 1, got " + columns);
    }
    int used = Math.min(columns, samples.size());
    int rows = (samples.size() + used - 1) / used;
    int cellHeight = SHEET_TILE + SHEET_CAPTION;
    BufferedImage sheet = Png.canvas(used * SHEET_TILE, rows * cellHeight, SHEET_BACKGROUND);
    Graphics2D g = Png.graphics(sheet);
    try {
      for (int i = 0; i < samples.size(); i++) {
        Sample sample = samples.get(i);
        GrayImage image = sample.image();
        int cellLeft = (i % used) * SHEET_TILE;
        int cellTop = (i / used) * cellHeight;

        // Fit the image into the tile, keeping its aspect ratio, and centre it.
        double scale = (double) (SHEET_TILE - 8) / Math.max(image.width(), image.height());
        double left = cellLeft + (SHEET_TILE - image.width() * scale) / 2;
        double top = cellTop + (SHEET_TILE - image.height() * scale) / 2;
        java.awt.Shape clip = g.getClip();
        g.clipRect(cellLeft, cellTop, SHEET_TILE, SHEET_TILE);
        drawFace(g, image, sample.keypoints(), null, left, top, scale, 8f, 2.2);
        g.setClip(clip);

        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        g.setColor(Color.WHITE);
        FontMetrics metrics = g.getFontMetrics();
        String caption = sample.name();
        g.drawString(
            caption,
            cellLeft + Math.max(4, (SHEET_TILE - metrics.stringWidth(caption)) / 2),
            cellTop + SHEET_TILE + metrics.getAscent() + 2);
      }
    } finally {
      g.dispose();
    }
    Png.write(sheet, png);
  }

  /** Draws the image at (left, top) scaled by {@code scale}, then the points over it. */
  private static void drawFace(
      Graphics2D g,
      GrayImage image,
      double[] points,
      double[] second,
      double left,
      double top,
      double scale,
      float fontSize,
      double radius) {
    checkPoints("points", points);
    if (second != null) {
      checkPoints("second points", second);
    }

    AffineTransform placement = new AffineTransform(scale, 0, 0, scale, left, top);
    g.drawImage(toRgb(image), placement, null);

    if (second != null) {
      g.setColor(PAIR_LINE);
      g.setStroke(new BasicStroke(1.2f));
      for (int i = 0; i < Sample.POINTS; i++) {
        g.draw(
            new Line2D.Double(
                left + points[2 * i] * scale,
                top + points[2 * i + 1] * scale,
                left + second[2 * i] * scale,
                top + second[2 * i + 1] * scale));
      }
      drawDots(g, second, left, top, scale, radius, SECOND_COLOR);
    }
    drawDots(g, points, left, top, scale, radius, FIRST_COLOR);

    // Numbers go last so that no dot or line covers them.
    Font font = new Font(Font.SANS_SERIF, Font.BOLD, Math.round(fontSize));
    for (int i = 0; i < Sample.POINTS; i++) {
      double x = left + points[2 * i] * scale + radius + 1;
      double y = top + points[2 * i + 1] * scale - radius - 1;
      drawOutlinedText(g, Integer.toString(i), font, (float) x, (float) y);
    }
  }

  private static void drawDots(
      Graphics2D g,
      double[] points,
      double left,
      double top,
      double scale,
      double radius,
      Color color) {
    g.setStroke(new BasicStroke(1f));
    for (int i = 0; i < Sample.POINTS; i++) {
      Ellipse2D dot =
          new Ellipse2D.Double(
              left + points[2 * i] * scale - radius,
              top + points[2 * i + 1] * scale - radius,
              2 * radius,
              2 * radius);
      g.setColor(color);
      g.fill(dot);
      g.setColor(Color.BLACK);
      g.draw(dot);
    }
  }

  /** Draws white text with a dark outline, legible over both light and dark pixels. */
  private static void drawOutlinedText(Graphics2D g, String text, Font font, float x, float y) {
    java.awt.Shape outline =
        new TextLayout(text, font, g.getFontRenderContext())
            .getOutline(AffineTransform.getTranslateInstance(x, y));
    g.setColor(new Color(0, 0, 0, 200));
    g.setStroke(new BasicStroke(2.5f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
    g.draw(outline);
    g.setColor(Color.WHITE);
    g.fill(outline);
  }

  /** Draws the colour key of the two point sets in the upper left corner. */
  private static void drawKey(Graphics2D g) {
    Font font = new Font(Font.SANS_SERIF, Font.BOLD, 14);
    g.setColor(FIRST_COLOR);
    g.fill(new Ellipse2D.Double(10, 12, 10, 10));
    drawOutlinedText(g, "truth", font, 26, 22);
    g.setColor(SECOND_COLOR);
    g.fill(new Ellipse2D.Double(10, 32, 10, 10));
    drawOutlinedText(g, "prediction", font, 26, 42);
  }

  private static BufferedImage toRgb(GrayImage image) {
    BufferedImage rgb =
        new BufferedImage(image.width(), image.height(), BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < image.height(); y++) {
      for (int x = 0; x < image.width(); x++) {
        float value = image.get(x, y);
        int level = Float.isNaN(value) ? 0 : Math.round(Math.clamp(value, 0f, 1f) * 255);
        rgb.setRGB(x, y, (level << 16) | (level << 8) | level);
      }
    }
    return rgb;
  }

  private static void checkPoints(String role, double[] points) {
    if (points.length != 2 * Sample.POINTS) {
      throw new IllegalArgumentException(
          "expected " + 2 * Sample.POINTS + " " + role + " coordinates, got " + points.length);
    }
  }
}
