package dev.kiln.keypoints.plot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.eval.EvaluationResult;
import dev.kiln.keypoints.eval.Evaluator;
import dev.kiln.keypoints.eval.Nme;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OverlayAndChartsTest {

  /** Returns a 96x96 gradient image with 68 points on an ellipse, like a rough face outline. */
  static Sample sample(String name, double shift) {
    GrayImage image = GrayImage.blank(96, 96);
    for (int y = 0; y < 96; y++) {
      for (int x = 0; x < 96; x++) {
        image.set(x, y, 0.2f + 0.6f * (x + y) / 190f);
      }
    }
    double[] points = new double[136];
    for (int i = 0; i < 68; i++) {
      double angle = 2 * Math.PI * i / 68;
      points[2 * i] = 48 + shift + 36 * Math.cos(angle);
      points[2 * i + 1] = 48 + 42 * Math.sin(angle);
    }
    return new Sample(name, image, points);
  }

  static EvaluationResult result(String checkpoint, double spread) {
    Random random = new Random(7);
    Evaluator evaluator = new Evaluator(checkpoint, "test", "cpu");
    Sample truth = sample("t", 0);
    for (int face = 0; face < 200; face++) {
      double[] predicted = truth.keypoints().clone();
      for (int i = 0; i < predicted.length; i++) {
        predicted[i] += random.nextGaussian() * spread;
      }
      evaluator.add(Nme.of("face" + face, predicted, truth.keypoints()));
    }
    return evaluator.result();
  }

  @Test
  void overlayUpscalesSmallImage(@TempDir Path folder) throws IOException {
    Sample face = sample("face.png", 0);
    Path file = folder.resolve("overlay.png");

    KeypointOverlay.write(face.image(), face.keypoints(), sample("p", 2).keypoints(), file);
    BufferedImage image = PlotImages.read(file);

    assertEquals(640, image.getWidth());
    assertEquals(640, image.getHeight());
  }

  @Test
  void overlayDrawsBothColours() {
    Sample face = sample("face.png", 0);

    BufferedImage image =
        KeypointOverlay.render(face.image(), face.keypoints(), sample("p", 4).keypoints());

    assertTrue(PlotImages.pixelsOfColor(image, KeypointOverlay.FIRST_COLOR.getRGB()) > 200);
    assertTrue(PlotImages.pixelsOfColor(image, KeypointOverlay.SECOND_COLOR.getRGB()) > 200);
  }

  @Test
  void overlaySingleSetHasNoSecondColour() {
    Sample face = sample("face.png", 0);

    BufferedImage image = KeypointOverlay.render(face.image(), face.keypoints(), null);

    assertEquals(0, PlotImages.pixelsOfColor(image, KeypointOverlay.SECOND_COLOR.getRGB()));
  }

  @Test
  void overlayWrongPointCountRejected() {
    assertThrows(
        IllegalArgumentException.class,
        () -> KeypointOverlay.render(GrayImage.blank(8, 8), new double[10], null));
  }

  @Test
  void contactSheetTilesInGrid(@TempDir Path folder) throws IOException {
    List<Sample> samples = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      samples.add(sample("face" + i + ".png", i));
    }
    Path file = folder.resolve("sheet.png");

    KeypointOverlay.contactSheet(samples, 3, file);
    BufferedImage image = PlotImages.read(file);

    assertEquals(3 * 320, image.getWidth());
    assertEquals(2 * (320 + 22), image.getHeight());
    assertTrue(PlotImages.pixelsUnlikeCorner(image) > 50_000);
  }

  @Test
  void contactSheetEmptyRejected(@TempDir Path folder) {
    assertThrows(
        IllegalArgumentException.class,
        () -> KeypointOverlay.contactSheet(List.of(), 3, folder.resolve("sheet.png")));
  }

  @Test
  void cedPlotWritesImage(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("ced.png");

    CedPlot.write(
        List.of(result("epoch-10", 0.4), result("epoch-30", 0.25)), 0.15, 0.001, file, 800, 500);
    BufferedImage image = PlotImages.read(file);

    assertEquals(800, image.getWidth());
    assertEquals(500, image.getHeight());
    assertTrue(PlotImages.pixelsOfColor(image, 0x2563EB) > 100);
  }

  @Test
  void trainingCurvesFromHistory(@TempDir Path folder) throws IOException {
    StringBuilder csv = new StringBuilder("epoch,train_loss,val_loss,val_nme,lr\n");
    for (int epoch = 1; epoch <= 40; epoch++) {
      csv.append(epoch)
          .append(',')
          .append(0.3 * Math.exp(-0.1 * epoch) + 0.001)
          .append(',')
          .append(epoch % 10 == 0 ? "nan" : Double.toString(0.35 * Math.exp(-0.08 * epoch) + 0.004))
          .append(',')
          .append(0.25 * Math.exp(-0.07 * epoch) + 0.055)
          .append(",0.001\n");
    }
    Path history = folder.resolve("history.csv");
    Files.writeString(history, csv);
    Path file = folder.resolve("curves.png");

    TrainingCurves.write(history, file);
    BufferedImage image = PlotImages.read(file);

    assertEquals(800, image.getWidth());
    assertEquals(1000, image.getHeight());
    assertTrue(PlotImages.pixelsOfColor(image, 0xDC2626) > 100, "validation loss line");
  }

  @Test
  void trainingCurvesInvalidNumberNamesLine(@TempDir Path folder) throws IOException {
    Path history = folder.resolve("history.csv");
    Files.writeString(history, "epoch,train_loss\n1,0.5\n2,abc\n");

    IOException error =
        assertThrows(
            IOException.class, () -> TrainingCurves.write(history, folder.resolve("c.png")));

    assertTrue(
        error.getMessage().contains("history.csv:3: invalid number 'abc'"), error.getMessage());
  }
}
