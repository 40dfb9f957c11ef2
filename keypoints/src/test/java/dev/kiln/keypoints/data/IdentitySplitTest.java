package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Splitting samples into training and validation sets by identity. */
class IdentitySplitTest {

  /**
   * Allowed gap between the validation share of samples and the requested fraction. The greedy
   * split stops within half of one identity's group of the target; groups here have at most 6 of
   * 700 samples, under 0.5%.
   */
  private static final double FRACTION_TOLERANCE = 0.005;

  @TempDir Path dir;

  /** Returns file names of 200 people with 1 to 6 images each, 700 names in all. */
  private static List<String> names() {
    List<String> names = new ArrayList<>();
    for (int person = 0; person < 200; person++) {
      int images = 1 + (person * 7) % 6;
      for (int i = 0; i < images; i++) {
        names.add(String.format("First_Last-%03d_%02d.jpg", person, i));
      }
    }
    return names;
  }

  @Test
  void identityIsNameBeforeLastUnderscore() {
    assertEquals("Abdel_Aziz_Al-Hakim", IdentitySplit.identityOf("Abdel_Aziz_Al-Hakim_00.jpg"));
    assertEquals("Cher", IdentitySplit.identityOf("Cher_01.jpg"));
    assertEquals("nounderscore.jpg", IdentitySplit.identityOf("nounderscore.jpg"));
  }

  @Test
  void splitKeepsIdentitiesDisjoint() {
    List<String> names = names();
    IdentitySplit split = IdentitySplit.ofNames(names, 0.15, 7);
    Set<String> all = new HashSet<>();
    names.forEach(name -> all.add(IdentitySplit.identityOf(name)));

    Set<String> overlap = new HashSet<>(split.trainIdentities());
    overlap.retainAll(split.validationIdentities());
    assertTrue(overlap.isEmpty(), "in both sets: " + overlap);

    Set<String> union = new HashSet<>(split.trainIdentities());
    union.addAll(split.validationIdentities());
    assertEquals(all, union);
  }

  @Test
  void splitSeparatesSamplesByIdentity() {
    List<Sample> samples = new ArrayList<>();
    for (String name : names()) {
      samples.add(new Sample(name, GrayImage.blank(1, 1), new double[2 * Sample.POINTS]));
    }
    IdentitySplit split = IdentitySplit.of(samples, 0.15, 3);

    List<Sample> train = split.train(samples);
    List<Sample> validation = split.validation(samples);

    assertEquals(samples.size(), train.size() + validation.size());
    for (Sample sample : validation) {
      assertFalse(
          split.trainIdentities().contains(IdentitySplit.identityOf(sample.name())), sample.name());
    }
  }

  @Test
  void splitSameSeedSameResult() {
    IdentitySplit first = IdentitySplit.ofNames(names(), 0.15, 42);
    List<String> reversed = new ArrayList<>(names()).reversed();

    assertEquals(first, IdentitySplit.ofNames(reversed, 0.15, 42));
  }

  @Test
  void splitOtherSeedOtherResult() {
    assertNotEquals(
        IdentitySplit.ofNames(names(), 0.15, 1).validationIdentities(),
        IdentitySplit.ofNames(names(), 0.15, 2).validationIdentities());
  }

  @Test
  void splitHonoursValidationFraction() {
    List<String> names = names();
    for (double fraction : new double[] {0.1, 0.15, 0.3}) {
      IdentitySplit split = IdentitySplit.ofNames(names, fraction, 11);
      long held = names.stream().filter(split::isValidation).count();

      assertEquals(fraction, (double) held / names.size(), FRACTION_TOLERANCE, "fraction");
    }
  }

  @Test
  void splitZeroFractionKeepsAllTraining() {
    IdentitySplit split = IdentitySplit.ofNames(names(), 0, 5);

    assertTrue(split.validationIdentities().isEmpty());
  }

  @Test
  void splitWriteReadRoundTrip() throws IOException {
    IdentitySplit split = IdentitySplit.ofNames(names(), 0.15, 9);
    Path file = dir.resolve("split.txt");

    split.write(file);

    assertEquals(split, IdentitySplit.read(file));
  }

  @Test
  void splitReadRejectsMalformedLine() throws IOException {
    Path file = dir.resolve("split.txt");
    Files.writeString(file, "# header\ntrain\tA\nholdout\tB\n");

    IOException error = assertThrows(IOException.class, () -> IdentitySplit.read(file));

    assertTrue(error.getMessage().contains("line 3"), error.getMessage());
  }

  @Test
  void splitReadRejectsIdentityInBoth() throws IOException {
    Path file = dir.resolve("split.txt");
    Files.writeString(file, "train\tA\nvalidation\tA\n");

    IOException error = assertThrows(IOException.class, () -> IdentitySplit.read(file));

    assertTrue(error.getMessage().contains("line 2"), error.getMessage());
  }
}
