package dev.kiln.keypoints.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import org.junit.jupiter.api.Test;

class NmeTest {

  /** Truth with every point at (20, 20) except the outer eye corners, 10 pixels apart. */
  static double[] face() {
    double[] points = new double[136];
    for (int i = 0; i < 68; i++) {
      points[2 * i] = 20;
      points[2 * i + 1] = 20;
    }
    points[2 * 36] = 15;
    points[2 * 45] = 25;
    return points;
  }

  static double[] shifted(double[] points, double dx, double dy) {
    double[] moved = points.clone();
    for (int i = 0; i < 68; i++) {
      moved[2 * i] += dx;
      moved[2 * i + 1] += dy;
    }
    return moved;
  }

  @Test
  void nmeUniformOffsetIsHalf() {
    double[] truth = face();

    Nme nme = Nme.of("face", shifted(truth, 3, 4), truth);

    assertEquals(0.5, nme.value(), 1e-12);
  }

  @Test
  void nmeUniformOffsetEveryRegion() {
    double[] truth = face();

    Nme nme = Nme.of("face", shifted(truth, 3, 4), truth);

    for (Region region : Region.values()) {
      assertEquals(0.5, nme.region(region), 1e-12, region.label());
    }
  }

  @Test
  void nmePerfectPredictionIsZero() {
    double[] truth = face();

    assertEquals(0.0, Nme.of("face", truth.clone(), truth).value());
  }

  @Test
  void nmeMouthOnlyError() {
    double[] truth = face();
    double[] predicted = truth.clone();
    for (int i = 48; i <= 67; i++) {
      predicted[2 * i] += 5;
    }

    Nme nme = Nme.of("face", predicted, truth);

    assertEquals(0.5, nme.region(Region.MOUTH), 1e-12);
    assertEquals(0.0, nme.region(Region.JAW));
    assertEquals(0.0, nme.region(Region.BROWS));
    assertEquals(0.0, nme.region(Region.NOSE));
    assertEquals(0.0, nme.region(Region.EYES));
    assertEquals(20 * 0.5 / 68, nme.value(), 1e-12);
  }

  @Test
  void nmeSinglePointPerRegion() {
    double[] truth = face();
    double[] predicted = truth.clone();
    predicted[2 * 30 + 1] += 9;

    Nme nme = Nme.of("face", predicted, truth);

    assertEquals(0.9 / 9, nme.region(Region.NOSE), 1e-12);
    assertEquals(0.9 / 68, nme.value(), 1e-12);
  }

  @Test
  void nmeUsesTrueEyeCornersOnly() {
    double[] truth = face();
    double[] predicted = truth.clone();
    predicted[2 * 45] = 115;

    Nme nme = Nme.of("face", predicted, truth);

    assertEquals(90.0 / 10 / 68, nme.value(), 1e-12);
  }

  @Test
  void nmeCoincidentEyeCornersNamesSample() {
    double[] truth = face();
    truth[2 * 45] = truth[2 * 36];

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> Nme.of("img_0042.jpg", truth.clone(), truth));

    assertTrue(error.getMessage().startsWith("img_0042.jpg: "), error.getMessage());
    assertTrue(error.getMessage().contains("undefined"), error.getMessage());
  }

  @Test
  void nmeWrongLengthRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> Nme.of("short", new double[134], face()));

    assertTrue(error.getMessage().contains("got 134"), error.getMessage());
  }

  @Test
  void nmeNanPredictionRejected() {
    double[] predicted = face();
    predicted[2 * 7 + 1] = Double.NaN;

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> Nme.of("nan", predicted, face()));

    assertTrue(error.getMessage().contains("y coordinate of point 7"), error.getMessage());
  }

  @Test
  void nmeFromSampleUsesItsName() {
    Sample sample = new Sample("a.png", GrayImage.blank(4, 4), face());

    Nme nme = Nme.of(sample, shifted(face(), 0, 10));

    assertEquals("a.png", nme.name());
    assertEquals(1.0, nme.value(), 1e-12);
  }
}
