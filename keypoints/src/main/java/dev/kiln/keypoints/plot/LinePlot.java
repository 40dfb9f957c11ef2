package dev.kiln.keypoints.plot;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.Shape;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A line chart with a title, axis labels, round-numbered ticks, a legend and any number of series,
 * with an optional log-scale y axis, rendered with Java2D. Non-finite y values, and non-positive
 * ones on a log axis, leave a gap in their line.
 *
 * <p>Configure it with the chained setters, then call {@link #writePng} or {@link #stack} for
 * several panels in one image. Not thread-safe.
 */
public final class LinePlot {
  private static final Color[] PALETTE = {
    new Color(0x2563EB), new Color(0xDC2626), new Color(0x16A34A),
    new Color(0xD97706), new Color(0x7C3AED), new Color(0x0891B2),
  };
  private static final Color BACKGROUND = Color.WHITE;
  private static final Color TEXT = new Color(0x1F2937);
  private static final Color AXIS = new Color(0x6B7280);
  private static final Color GRID = new Color(0xE5E7EB);
  private static final Color MINOR_GRID = new Color(0xF3F4F6);

  /** One named line: points (x[i], y[i]) joined in order. */
  public record Series(String name, double[] x, double[] y, Color color) {
    public Series {
      if (x.length != y.length) {
        throw new IllegalArgumentException(
            "series '" + name + "' has " + x.length + " x values but " + y.length + " y values");
      }
    }
  }

  private final String title;
  private String xLabel = "";
  private String yLabel = "";
  private boolean logY;
  private boolean legendAtBottom;
  private double[] xRange;
  private double[] yRange;
  private final List<Series> series = new ArrayList<>();

  /** Creates an empty plot with the given title. */
  public LinePlot(String title) {
    this.title = title;
  }

  /** Sets the label of the x axis. */
  public LinePlot xLabel(String label) {
    this.xLabel = label;
    return this;
  }

  /** Sets the label of the y axis. */
  public LinePlot yLabel(String label) {
    this.yLabel = label;
    return this;
  }

  /** Makes the y axis logarithmic (base 10) when {@code log} is true. */
  public LinePlot logY(boolean log) {
    this.logY = log;
    return this;
  }

  /**
   * Places the legend in the lower right corner of the plot area when {@code bottom} is true, in
   * place of the upper right, for curves that rise towards the upper right.
   */
  public LinePlot legendAtBottom(boolean bottom) {
    this.legendAtBottom = bottom;
    return this;
  }

  /** Fixes the x axis to [min, max] in place of the range of the data. */
  public LinePlot xRange(double min, double max) {
    this.xRange = checkedRange("x", min, max);
    return this;
  }

  /** Fixes the y axis to [min, max] in place of the range of the data. */
  public LinePlot yRange(double min, double max) {
    this.yRange = checkedRange("y", min, max);
    return this;
  }

  /** Adds a series in the next palette colour. */
  public LinePlot add(String name, double[] x, double[] y) {
    return add(name, x, y, PALETTE[series.size() % PALETTE.length]);
  }

  /** Adds a series in {@code color}. */
  public LinePlot add(String name, double[] x, double[] y, Color color) {
    series.add(new Series(name, x.clone(), y.clone(), color));
    return this;
  }

  /** Returns the series added so far. */
  public List<Series> series() {
    return List.copyOf(series);
  }

  /** Renders the plot into a new {@code width × height} image. */
  public BufferedImage render(int width, int height) {
    BufferedImage image = Png.canvas(width, height, BACKGROUND);
    Graphics2D g = Png.graphics(image);
    try {
      render(g, 0, 0, width, height);
    } finally {
      g.dispose();
    }
    return image;
  }

  /** Renders the plot into {@code g}, inside the rectangle at (left, top) of the given size. */
  public void render(Graphics2D g, int left, int top, int width, int height) {
    Font titleFont = new Font(Font.SANS_SERIF, Font.BOLD, 18);
    Font labelFont = new Font(Font.SANS_SERIF, Font.PLAIN, 14);
    Font tickFont = new Font(Font.SANS_SERIF, Font.PLAIN, 12);

    Axis x = xAxis();
    Axis y = yAxis();
    int tickLabelWidth = 0;
    for (Axis.Tick tick : y.ticks()) {
      if (tick.label() != null) {
        tickLabelWidth =
            Math.max(tickLabelWidth, g.getFontMetrics(tickFont).stringWidth(tick.label()));
      }
    }

    // The plot area: room above for the title, left for the y label and ticks, below for x.
    int areaLeft = left + (yLabel.isEmpty() ? 16 : 40) + tickLabelWidth + 8;
    int areaTop = top + (title.isEmpty() ? 16 : 48);
    int areaRight = left + width - 24;
    int areaBottom = top + height - (xLabel.isEmpty() ? 36 : 62);
    Rectangle2D area =
        new Rectangle2D.Double(areaLeft, areaTop, areaRight - areaLeft, areaBottom - areaTop);
    if (area.getWidth() < 20 || area.getHeight() < 20) {
      throw new IllegalArgumentException(
          "a " + width + "x" + height + " panel is too small for a plot");
    }

    drawGrid(g, area, x, y, tickFont);
    drawSeries(g, area, x, y);
    drawFrameAndLabels(g, left, top, width, area, titleFont, labelFont);
    drawLegend(g, area, tickFont);
  }

  /** Writes the plot as a {@code width × height} PNG, atomically. */
  public void writePng(Path file, int width, int height) throws IOException {
    Png.write(render(width, height), file);
  }

  /**
   * Renders several plots as panels stacked top to bottom, each {@code width × panelHeight}, into
   * one image.
   */
  public static BufferedImage stack(List<LinePlot> panels, int width, int panelHeight) {
    if (panels.isEmpty()) {
      throw new IllegalArgumentException("stack needs at least one plot");
    }
    BufferedImage image = Png.canvas(width, panelHeight * panels.size(), BACKGROUND);
    Graphics2D g = Png.graphics(image);
    try {
      for (int i = 0; i < panels.size(); i++) {
        panels.get(i).render(g, 0, i * panelHeight, width, panelHeight);
      }
    } finally {
      g.dispose();
    }
    return image;
  }

  private Axis xAxis() {
    if (xRange != null) {
      return Axis.linear(xRange[0], xRange[1], false);
    }
    double[] bounds = bounds(true);
    return Axis.linear(bounds[0], bounds[1], false);
  }

  private Axis yAxis() {
    if (yRange != null) {
      return logY ? Axis.log(yRange[0], yRange[1]) : Axis.linear(yRange[0], yRange[1], false);
    }
    double[] bounds = bounds(false);
    return logY ? Axis.log(bounds[0], bounds[1]) : Axis.linear(bounds[0], bounds[1], true);
  }

  /** Returns the min and max of the plottable x or y values, or a default range if none. */
  private double[] bounds(boolean ofX) {
    double min = Double.POSITIVE_INFINITY;
    double max = Double.NEGATIVE_INFINITY;
    for (Series s : series) {
      for (int i = 0; i < s.x().length; i++) {
        if (plottable(s.x()[i], s.y()[i])) {
          double value = ofX ? s.x()[i] : s.y()[i];
          min = Math.min(min, value);
          max = Math.max(max, value);
        }
      }
    }
    if (min > max) {
      return logY && !ofX ? new double[] {0.1, 1} : new double[] {0, 1};
    }
    return new double[] {min, max};
  }

  private boolean plottable(double x, double y) {
    return Double.isFinite(x) && Double.isFinite(y) && (!logY || y > 0);
  }

  private void drawGrid(Graphics2D g, Rectangle2D area, Axis x, Axis y, Font tickFont) {
    g.setFont(tickFont);
    FontMetrics metrics = g.getFontMetrics();
    g.setStroke(new BasicStroke(1f));
    for (Axis.Tick tick : y.ticks()) {
      double py = area.getMaxY() - y.fraction(tick.value()) * area.getHeight();
      g.setColor(tick.label() == null ? MINOR_GRID : GRID);
      g.draw(new Line2D.Double(area.getMinX(), py, area.getMaxX(), py));
      if (tick.label() != null) {
        g.setColor(TEXT);
        int textWidth = metrics.stringWidth(tick.label());
        g.drawString(
            tick.label(),
            (float) (area.getMinX() - 8 - textWidth),
            (float) (py + metrics.getAscent() / 2.0 - 1));
      }
    }
    for (Axis.Tick tick : x.ticks()) {
      double px = area.getMinX() + x.fraction(tick.value()) * area.getWidth();
      g.setColor(GRID);
      g.draw(new Line2D.Double(px, area.getMinY(), px, area.getMaxY()));
      g.setColor(TEXT);
      int textWidth = metrics.stringWidth(tick.label());
      g.drawString(
          tick.label(),
          (float) (px - textWidth / 2.0),
          (float) (area.getMaxY() + 6 + metrics.getAscent()));
    }
  }

  private void drawSeries(Graphics2D g, Rectangle2D area, Axis x, Axis y) {
    Shape oldClip = g.getClip();
    g.clip(
        new Rectangle2D.Double(
            area.getX() - 3, area.getY() - 3, area.getWidth() + 6, area.getHeight() + 6));
    for (Series s : series) {
      Path2D.Double line = new Path2D.Double();
      boolean penDown = false;
      int points = 0;
      for (int i = 0; i < s.x().length; i++) {
        if (!plottable(s.x()[i], s.y()[i])) {
          penDown = false;
          continue;
        }
        double px = area.getMinX() + x.fraction(s.x()[i]) * area.getWidth();
        double py = area.getMaxY() - y.fraction(s.y()[i]) * area.getHeight();
        if (penDown) {
          line.lineTo(px, py);
        } else {
          line.moveTo(px, py);
          penDown = true;
        }
        points++;
      }
      g.setColor(s.color());
      g.setStroke(new BasicStroke(2.2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
      g.draw(line);

      // Markers show where the values are when there are few of them, and show lone points.
      if (points <= 40) {
        for (int i = 0; i < s.x().length; i++) {
          if (plottable(s.x()[i], s.y()[i])) {
            double px = area.getMinX() + x.fraction(s.x()[i]) * area.getWidth();
            double py = area.getMaxY() - y.fraction(s.y()[i]) * area.getHeight();
            g.fill(new Ellipse2D.Double(px - 3.5, py - 3.5, 7, 7));
          }
        }
      }
    }
    g.setClip(oldClip);
  }

  private void drawFrameAndLabels(
      Graphics2D g,
      int left,
      int top,
      int width,
      Rectangle2D area,
      Font titleFont,
      Font labelFont) {
    g.setColor(AXIS);
    g.setStroke(new BasicStroke(1.2f));
    g.draw(area);

    g.setColor(TEXT);
    g.setFont(titleFont);
    FontMetrics titleMetrics = g.getFontMetrics();
    g.drawString(title, (float) (left + (width - titleMetrics.stringWidth(title)) / 2.0), top + 30);

    g.setFont(labelFont);
    FontMetrics labelMetrics = g.getFontMetrics();
    g.drawString(
        xLabel,
        (float) (area.getCenterX() - labelMetrics.stringWidth(xLabel) / 2.0),
        (float) (area.getMaxY() + 46));

    AffineTransform saved = g.getTransform();
    g.translate(left + 22, area.getCenterY() + labelMetrics.stringWidth(yLabel) / 2.0);
    g.rotate(-Math.PI / 2);
    g.drawString(yLabel, 0, 0);
    g.setTransform(saved);
  }

  private void drawLegend(Graphics2D g, Rectangle2D area, Font font) {
    if (series.isEmpty()) {
      return;
    }
    g.setFont(font);
    FontMetrics metrics = g.getFontMetrics();
    int lineHeight = metrics.getHeight() + 4;
    int textWidth = 0;
    for (Series s : series) {
      textWidth = Math.max(textWidth, metrics.stringWidth(s.name()));
    }
    int boxWidth = textWidth + 48;
    int boxHeight = lineHeight * series.size() + 10;
    double boxLeft = area.getMaxX() - boxWidth - 10;
    double boxTop = legendAtBottom ? area.getMaxY() - boxHeight - 10 : area.getMinY() + 10;

    g.setColor(new Color(255, 255, 255, 225));
    g.fill(new Rectangle2D.Double(boxLeft, boxTop, boxWidth, boxHeight));
    g.setColor(GRID);
    g.setStroke(new BasicStroke(1f));
    g.draw(new Rectangle2D.Double(boxLeft, boxTop, boxWidth, boxHeight));
    for (int i = 0; i < series.size(); i++) {
      double rowY = boxTop + 5 + lineHeight * (i + 0.5);
      g.setColor(series.get(i).color());
      g.setStroke(new BasicStroke(2.5f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
      g.draw(new Line2D.Double(boxLeft + 10, rowY, boxLeft + 32, rowY));
      g.setColor(TEXT);
      g.drawString(
          series.get(i).name(),
          (float) (boxLeft + 40),
          (float) (rowY + metrics.getAscent() / 2.0 - 2));
    }
  }

  private double[] checkedRange(String axis, double min, double max) {
    if (!Double.isFinite(min) || !Double.isFinite(max) || !(min < max)) {
      throw new IllegalArgumentException(
          axis + " range must be finite with min < max, got [" + min + ", " + max + "]");
    }
    return new double[] {min, max};
  }
}
