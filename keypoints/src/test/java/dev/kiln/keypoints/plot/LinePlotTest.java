package dev.kiln.keypoints.plot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinePlotTest {

  static LinePlot lossPlot() {
    double[] epochs = new double[30];
    double[] train = new double[30];
    double[] validation = new double[30];
    for (int i = 0; i < 30; i++) {
      epochs[i] = i + 1;
      train[i] = 0.5 * Math.exp(-0.15 * i) + 0.002;
      validation[i] = 0.6 * Math.exp(-0.12 * i) + 0.006;
    }
    return new LinePlot("Loss")
        .xLabel("epoch")
        .yLabel("loss")
        .logY(true)
        .add("train", epochs, train)
        .add("validation", epochs, validation);
  }

  @Test
  void writePngHasRequestedSize(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("loss.png");

    lossPlot().writePng(file, 800, 500);
    BufferedImage image = PlotImages.read(file);

    assertEquals(800, image.getWidth());
    assertEquals(500, image.getHeight());
  }

  @Test
  void writePngIsNotBlank(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("loss.png");

    lossPlot().writePng(file, 800, 500);

    assertTrue(PlotImages.pixelsUnlikeCorner(PlotImages.read(file)) > 5000);
  }

  @Test
  void renderDrawsSeriesColours() {
    BufferedImage image = lossPlot().render(800, 500);

    assertTrue(PlotImages.pixelsOfColor(image, 0x2563EB) > 100, "first series");
    assertTrue(PlotImages.pixelsOfColor(image, 0xDC2626) > 100, "second series");
  }

  @Test
  void writePngLeavesOnlyTheFile(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("loss.png");
    Files.writeString(file, "old");

    lossPlot().writePng(file, 400, 300);

    try (Stream<Path> files = Files.list(folder)) {
      assertEquals(List.of(file), files.toList());
    }
  }

  @Test
  void stackHasPanelHeights() {
    BufferedImage image = LinePlot.stack(List.of(lossPlot(), lossPlot()), 800, 500);

    assertEquals(1000, image.getHeight());
  }

  @Test
  void logPlotSkipsNonPositiveValues() {
    LinePlot plot =
        new LinePlot("gaps")
            .logY(true)
            .add("y", new double[] {1, 2, 3, 4}, new double[] {0.1, 0, Double.NaN, 0.01});

    assertTrue(PlotImages.pixelsOfColor(plot.render(400, 300), 0x2563EB) > 20);
  }

  @Test
  void emptyPlotStillRenders() {
    BufferedImage image = new LinePlot("empty").render(400, 300);

    assertTrue(PlotImages.pixelsUnlikeCorner(image) > 0);
  }

  @Test
  void constantSeriesRenders() {
    LinePlot plot = new LinePlot("flat").add("y", new double[] {1, 2}, new double[] {3, 3});

    assertTrue(PlotImages.pixelsOfColor(plot.render(400, 300), 0x2563EB) > 20);
  }

  @Test
  void seriesLengthMismatchRejected() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new LinePlot("bad").add("y", new double[] {1, 2}, new double[] {1}));
  }

  @Test
  void tinyPanelRejected() {
    assertThrows(IllegalArgumentException.class, () -> lossPlot().render(60, 60));
  }
}
