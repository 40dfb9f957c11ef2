package dev.kiln.keypoints.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.HostileImages;
import dev.kiln.keypoints.data.ImageDecoder;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link KeypointDetector}'s prediction API: results, input checks and thread safety. */
class KeypointDetectorTest {

  @TempDir static Path dir;

  private static KeypointDetector detector;

  @BeforeAll
  static void loadDetector() throws IOException {
    detector = KeypointDetector.load(TestCheckpoints.writeSmall(dir));
  }

  @Test
  void predictReturns136FiniteValues() {
    double[] points = detector.predict(face(120, 100, 0));

    assertEquals(136, points.length);
    assertTrue(Arrays.stream(points).allMatch(Double::isFinite), Arrays.toString(points));
  }

  @Test
  void detectMatchesPredictOfDecodedImage() throws IOException {
    Path file = dir.resolve("white.png");
    BufferedImage white = new BufferedImage(80, 90, BufferedImage.TYPE_3BYTE_BGR);
    for (int band = 0; band < 3; band++) {
      int[] full = new int[80 * 90];
      Arrays.fill(full, 255);
      white.getRaster().setSamples(0, 0, 80, 90, band, full);
    }
    ImageIO.write(white, "png", file.toFile());

    // Full white RGB gives luma 0.299 + 0.587 + 0.114, which must not round above 1.
    double[] detected = detector.detect(file);

    assertArrayEquals(detector.predict(ImageDecoder.decode(file)), detected);
  }

  @Test
  void batchMatchesSingleImages() {
    List<GrayImage> images = List.of(face(96, 96, 1), face(200, 150, 2), face(70, 130, 3));

    List<double[]> batch = detector.predict(images);

    assertEquals(3, batch.size());
    for (int i = 0; i < images.size(); i++) {
      assertArrayEquals(detector.predict(images.get(i)), batch.get(i), 1e-5, "image " + i);
    }
  }

  @Test
  void emptyBatchGivesEmptyList() {
    assertEquals(List.of(), detector.predict(List.of()));
  }

  @Test
  void pixelAboveOneRejectedWithIndex() {
    GrayImage image = face(100, 100, 4);
    image.set(7, 3, 255f);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> detector.predict(image));

    assertTrue(error.getMessage().contains("pixel 307"), error.getMessage());
    assertTrue(error.getMessage().contains("255.0"), error.getMessage());
  }

  @Test
  void negativePixelRejected() {
    GrayImage image = face(100, 100, 5);
    image.set(0, 0, -0.5f);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> detector.predict(image));

    assertTrue(error.getMessage().contains("-0.5"), error.getMessage());
  }

  @Test
  void nanPixelRejectedInBatch() {
    GrayImage image = face(100, 100, 6);
    image.set(99, 99, Float.NaN);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> detector.predict(List.of(face(100, 100, 7), image)));

    assertTrue(error.getMessage().contains("images[1]"), error.getMessage());
    assertTrue(error.getMessage().contains("NaN"), error.getMessage());
  }

  @Test
  void extremeAspectImageRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> detector.predict(GrayImage.blank(1, 200000)));

    assertTrue(error.getMessage().contains("1x200000"), error.getMessage());
  }

  @Test
  void imageUnderMinimumSideRejected() {
    IllegalArgumentException onePixel =
        assertThrows(IllegalArgumentException.class, () -> detector.predict(GrayImage.blank(1, 1)));
    IllegalArgumentException narrow =
        assertThrows(
            IllegalArgumentException.class,
            () -> detector.predict(List.of(face(96, 96, 9), face(15, 100, 9))));

    assertTrue(onePixel.getMessage().contains("1x1"), onePixel.getMessage());
    assertTrue(narrow.getMessage().contains("images[1]"), narrow.getMessage());
    assertTrue(narrow.getMessage().contains("15x100"), narrow.getMessage());
    assertEquals(136, detector.predict(face(16, 100, 9)).length);
  }

  @Test
  void onePixelFileFailsNamingFile() throws IOException {
    Path file = dir.resolve("one-pixel.png");
    Files.write(file, HostileImages.blackPng(1, 1));

    IOException error = assertThrows(IOException.class, () -> detector.detect(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("1x1"), error.getMessage());
  }

  @Test
  void hostilePngFailsAsIoException() throws IOException {
    Path file = dir.resolve("strip.png");
    Files.write(file, HostileImages.blackPng(1, 200000));

    IOException error = assertThrows(IOException.class, () -> detector.detect(file));

    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains("1x200000"), error.getMessage());
  }

  @Test
  void nullArgumentsRaiseNamedErrors() {
    NullPointerException file =
        assertThrows(NullPointerException.class, () -> detector.detect(null));
    NullPointerException image =
        assertThrows(NullPointerException.class, () -> detector.predict((GrayImage) null));
    NullPointerException list =
        assertThrows(NullPointerException.class, () -> detector.predict((List<GrayImage>) null));
    List<GrayImage> withNull = new ArrayList<>(List.of(face(96, 96, 8)));
    withNull.add(null);
    NullPointerException element =
        assertThrows(NullPointerException.class, () -> detector.predict(withNull));

    assertTrue(file.getMessage().contains("imageFile"), file.getMessage());
    assertTrue(image.getMessage().contains("image"), image.getMessage());
    assertTrue(list.getMessage().contains("images"), list.getMessage());
    assertTrue(element.getMessage().contains("images[1]"), element.getMessage());
  }

  @Test
  void sixteenThreadsMatchOneThreadBitForBit() throws Exception {
    List<GrayImage> images = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      images.add(face(90 + 7 * i, 140 - 3 * i, 10 + i));
    }
    List<double[]> expected = new ArrayList<>();
    for (GrayImage image : images) {
      expected.add(detector.predict(image));
    }
    List<double[]> expectedBatch = detector.predict(images);

    List<Callable<List<double[]>>> calls = new ArrayList<>();
    for (int t = 0; t < 16; t++) {
      int first = t;
      calls.add(
          () -> {
            List<double[]> results = new ArrayList<>();
            for (int round = 0; round < 4; round++) {
              results.add(detector.predict(images.get((first + round) % images.size())));
            }
            results.add(detector.predict(images).get(first));
            return results;
          });
    }

    List<Future<List<double[]>>> futures;
    try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
      futures = pool.invokeAll(calls);
    }
    for (int t = 0; t < 16; t++) {
      List<double[]> results = futures.get(t).get();
      for (int round = 0; round < 4; round++) {
        int index = (t + round) % images.size();
        assertArrayEquals(
            expected.get(index), results.get(round), "thread " + t + " image " + index);
      }
      assertArrayEquals(expectedBatch.get(t), results.get(4), "thread " + t + " batch");
    }
  }

  /** Returns a {@code width × height} image of smooth pseudo-random content in [0, 1]. */
  static GrayImage face(int width, int height, int seed) {
    GrayImage image = GrayImage.blank(width, height);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        double value = 0.5 + 0.5 * Math.sin(0.1 * x * (seed + 1) + 0.07 * y + seed);
        image.set(x, y, (float) value);
      }
    }
    return image;
  }
}
