package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.IdentitySplit;
import dev.kiln.keypoints.data.LoadOptions;
import dev.kiln.keypoints.data.Sample;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The synthetic dataset, read back through kiln's own loader. */
class SyntheticFacesTest {

  /**
   * Minimum difference between the face and the background or a feature after JPEG decoding. Before
   * encoding, the background is at most 0.35, the face at least 0.60 and the features 0.08.
   */
  private static final float MIN_CONTRAST = 0.2f;

  @TempDir Path temp;

  private static List<Sample> load(Path dataset, String set) throws IOException {
    return FaceDataset.load(
            dataset.resolve(set + "_frames_keypoints.csv"),
            dataset.resolve(set),
            LoadOptions.defaults())
        .samples();
  }

  @Test
  void loaderReadsTrainingSet() throws IOException {
    Path dataset = temp.resolve("faces");
    SyntheticFaces.Summary summary = SyntheticFaces.write(dataset, 10, 3, 7);

    List<Sample> samples = load(dataset, "training");

    assertEquals(new SyntheticFaces.Summary(10, 3, 3, 1), summary);
    assertEquals(
        List.of(
            "Person_A_00.jpg",
            "Person_A_01.jpg",
            "Person_A_02.jpg",
            "Person_A_03.jpg",
            "Person_B_00.jpg",
            "Person_B_01.jpg",
            "Person_B_02.jpg",
            "Person_B_03.jpg",
            "Person_C_00.jpg",
            "Person_C_01.jpg"),
        samples.stream().map(Sample::name).toList());
    assertEquals(
        Set.of("Person_A", "Person_B", "Person_C"),
        samples.stream().map(s -> IdentitySplit.identityOf(s.name())).collect(Collectors.toSet()));
  }

  @Test
  void testSetHasOtherPeople() throws IOException {
    Path dataset = temp.resolve("faces");
    SyntheticFaces.write(dataset, 10, 3, 7);

    List<Sample> samples = load(dataset, "test");

    assertEquals(
        List.of("Person_D_00.jpg", "Person_D_01.jpg", "Person_D_02.jpg"),
        samples.stream().map(Sample::name).toList());
  }

  @Test
  void keypointsLieInsideImage() throws IOException {
    Path dataset = temp.resolve("faces");
    SyntheticFaces.write(dataset, 12, 4, 3);

    for (String set : List.of("training", "test")) {
      for (Sample sample : load(dataset, set)) {
        GrayImage image = sample.image();
        assertTrue(image.width() >= SyntheticFaces.MIN_SIDE, sample.name() + " width");
        assertTrue(image.width() <= SyntheticFaces.MAX_SIDE, sample.name() + " width");
        assertTrue(image.height() >= SyntheticFaces.MIN_SIDE, sample.name() + " height");
        assertTrue(image.height() <= SyntheticFaces.MAX_SIDE, sample.name() + " height");
        for (int p = 0; p < Sample.POINTS; p++) {
          String where = sample.name() + " point " + p;
          assertTrue(sample.x(p) >= 0, where + " x " + sample.x(p));
          assertTrue(sample.x(p) < image.width(), where + " x " + sample.x(p));
          assertTrue(sample.y(p) >= 0, where + " y " + sample.y(p));
          assertTrue(sample.y(p) < image.height(), where + " y " + sample.y(p));
        }
      }
    }
  }

  @Test
  void keypointsFollowDrawnFace() throws IOException {
    Path dataset = temp.resolve("faces");
    SyntheticFaces.write(dataset, 8, 0, 11);

    for (Sample sample : load(dataset, "training")) {
      GrayImage image = sample.image();
      // Forehead: above the nose bridge (points 27 to 30) by its length, inside the face.
      double foreheadX = sample.x(27);
      double foreheadY = 2 * sample.y(27) - sample.y(30);
      float forehead = pixelAt(image, foreheadX, foreheadY);
      float rightEye = pixelAt(image, mean(sample, 36, 41, 0), mean(sample, 36, 41, 1));
      float leftEye = pixelAt(image, mean(sample, 42, 47, 0), mean(sample, 42, 47, 1));
      float corner = image.get(0, 0);

      assertTrue(forehead - rightEye > MIN_CONTRAST, sample.name() + " right eye " + rightEye);
      assertTrue(forehead - leftEye > MIN_CONTRAST, sample.name() + " left eye " + leftEye);
      assertTrue(forehead - corner > MIN_CONTRAST, sample.name() + " background " + corner);
    }
  }

  @Test
  void sameSeedGivesSameKeypoints() throws IOException {
    SyntheticFaces.write(temp.resolve("a"), 6, 2, 5);
    SyntheticFaces.write(temp.resolve("b"), 6, 2, 5);
    SyntheticFaces.write(temp.resolve("c"), 6, 2, 6);

    for (String csv : List.of("training_frames_keypoints.csv", "test_frames_keypoints.csv")) {
      byte[] first = Files.readAllBytes(temp.resolve("a").resolve(csv));
      assertArrayEquals(first, Files.readAllBytes(temp.resolve("b").resolve(csv)), csv);
      assertFalse(
          Files.readString(temp.resolve("a").resolve(csv))
              .equals(Files.readString(temp.resolve("c").resolve(csv))),
          csv + " with another seed");
    }
  }

  @Test
  void rejectsFolderThatIsNotEmpty() throws IOException {
    Path dataset = Files.createDirectory(temp.resolve("faces"));
    Path existing = Files.writeString(dataset.resolve("notes.txt"), "keep me");

    IOException error =
        assertThrows(IOException.class, () -> SyntheticFaces.write(dataset, 4, 0, 1));

    assertTrue(error.getMessage().contains("is not empty"), error.getMessage());
    assertEquals("keep me", Files.readString(existing));
    assertEquals(
        Set.of("notes.txt"),
        Files.list(dataset)
            .map(p -> p.getFileName().toString())
            .collect(Collectors.toCollection(TreeSet::new)));
  }

  @Test
  void writesIntoEmptyFolder() throws IOException {
    Path dataset = Files.createDirectory(temp.resolve("faces"));

    SyntheticFaces.write(dataset, 4, 0, 1);

    assertEquals(4, load(dataset, "training").size());
    assertEquals(0, load(dataset, "test").size());
  }

  @Test
  void personLettersCountLikeColumns() {
    assertEquals("A", SyntheticFaces.personLetters(0));
    assertEquals("Z", SyntheticFaces.personLetters(25));
    assertEquals("AA", SyntheticFaces.personLetters(26));
    assertEquals("AZ", SyntheticFaces.personLetters(51));
    assertEquals("BA", SyntheticFaces.personLetters(52));
  }

  private static double mean(Sample sample, int first, int last, int axis) {
    double sum = 0;
    for (int p = first; p <= last; p++) {
      sum += axis == 0 ? sample.x(p) : sample.y(p);
    }
    return sum / (last - first + 1);
  }

  private static float pixelAt(GrayImage image, double x, double y) {
    return image.get((int) Math.floor(x), (int) Math.floor(y));
  }
}
