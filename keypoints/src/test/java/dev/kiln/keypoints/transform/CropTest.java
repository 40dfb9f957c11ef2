package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.SPREAD_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.assertMarksOnKeypoints;
import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CropTest {
  /** Half-width of a 3×3 mark plus one pixel. Crops copy pixels, so marks stay sharp. */
  private static final double MARK_RADIUS = 2.5;

  /** Half the side of a 3×3 mark: a keypoint this far inside the crop has its whole mark. */
  private static final double MARK_MARGIN = 1.5;

  private static final Generator UNUSED = new Generator(0);

  @Test
  void centerCropKeepsMarksOnKeypoints() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample cropped = new CenterCrop(80).apply(sample, UNUSED);

    // The offset is (20, 5). It cuts off the corner, top-edge and two side marks, and leaves
    // marks 5, 6 and 7, which carry 7 keypoints each.
    int checked = assertMarksOnKeypoints(cropped, MARK_RADIUS, MARK_MARGIN, "centre crop 80");
    assertEquals(21, checked);
  }

  @Test
  void centerCropShiftsByHalfMargin() {
    Sample sample = markedSample(121, 90, SPREAD_MARKS, 3);

    Sample cropped = new CenterCrop(80).apply(sample, UNUSED);

    // (121 - 80) / 2 = 20.5 rounds down to 20, and (90 - 80) / 2 = 5.
    for (int i = 0; i < Sample.POINTS; i++) {
      assertEquals(sample.x(i) - 20, cropped.x(i), "x of point " + i);
      assertEquals(sample.y(i) - 5, cropped.y(i), "y of point " + i);
    }
  }

  @Test
  void centerCropCopiesPixelsExactly() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    for (int i = 0; i < sample.image().pixels().length; i++) {
      sample.image().pixels()[i] += (i % 7) / 10f;
    }

    Sample cropped = new CenterCrop(80).apply(sample, UNUSED);

    for (int y = 0; y < 80; y++) {
      for (int x = 0; x < 80; x++) {
        assertEquals(sample.image().get(x + 20, y + 5), cropped.image().get(x, y));
      }
    }
  }

  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3, 4, 5, 6})
  void randomCropKeepsMarksOnKeypoints(long seed) {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample cropped = new RandomCrop(70).apply(sample, new Generator(seed));

    int checked =
        assertMarksOnKeypoints(cropped, MARK_RADIUS, MARK_MARGIN, "random crop, seed " + seed);
    assertTrue(checked > 0, "no mark inside the crop");
  }

  @Test
  void randomCropReproducibleWithSeed() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample first = new RandomCrop(70).apply(sample, new Generator(42));
    Sample second = new RandomCrop(70).apply(sample, new Generator(42));

    assertEquals(first.image(), second.image());
    assertArrayEquals(first.keypoints(), second.keypoints());
  }

  @Test
  void randomCropReachesEveryOffset() {
    Sample sample = markedSample(13, 11, new int[][] {{5, 4}}, 3);
    RandomCrop crop = new RandomCrop(10);
    Generator random = new Generator(7);
    Set<String> offsets = new HashSet<>();

    for (int draw = 0; draw < 300; draw++) {
      Sample cropped = crop.apply(sample, random);
      int left = (int) Math.round(sample.x(0) - cropped.x(0));
      int top = (int) Math.round(sample.y(0) - cropped.y(0));
      offsets.add(left + "," + top);
    }

    // Left offsets 0..3 and top offsets 0..1 give eight placements.
    assertEquals(8, offsets.size(), "offsets seen: " + offsets);
  }

  @Test
  void exactSizeCropKeepsSample() {
    Sample sample = markedSample(64, 64, new int[][] {{5, 4}, {50, 50}}, 3);

    Sample random = new RandomCrop(64).apply(sample, new Generator(1));
    Sample centre = new CenterCrop(64).apply(sample, UNUSED);

    assertEquals(sample.image(), random.image());
    assertEquals(sample.image(), centre.image());
    assertArrayEquals(sample.keypoints(), random.keypoints());
  }

  @Test
  void smallImageRaisesErrorNamingSizes() {
    Sample sample = markedSample(60, 50, new int[][] {{5, 4}}, 3);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new RandomCrop(64).apply(sample, new Generator(1)));

    assertTrue(error.getMessage().contains(sample.name()), error.getMessage());
    assertTrue(error.getMessage().contains("60x50"), error.getMessage());
    assertTrue(error.getMessage().contains("64x64"), error.getMessage());
  }

  @Test
  void centerCropRaisesErrorForNarrowImage() {
    Sample sample = markedSample(60, 90, new int[][] {{5, 4}}, 3);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> new CenterCrop(64).apply(sample, UNUSED));

    assertTrue(error.getMessage().contains("60x90"), error.getMessage());
  }

  @Test
  void nonPositiveSizeRaisesError() {
    assertThrows(IllegalArgumentException.class, () -> new RandomCrop(0));
    assertThrows(IllegalArgumentException.class, () -> new CenterCrop(-3));
  }
}
