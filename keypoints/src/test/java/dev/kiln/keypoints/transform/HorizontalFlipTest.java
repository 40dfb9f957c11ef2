package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.CENTROID_TOLERANCE_PX;
import static dev.kiln.keypoints.transform.MarkedSamples.MIN_MARK_MASS;
import static dev.kiln.keypoints.transform.MarkedSamples.SPREAD_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.assertMarksOnKeypoints;
import static dev.kiln.keypoints.transform.MarkedSamples.centroid;
import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class HorizontalFlipTest {
  private static final int[] PERMUTATION = HorizontalFlip.MIRROR_PERMUTATION;

  /** Points on the face's vertical midline: chin, nose bridge, nose tip, and lip centres. */
  private static final Set<Integer> MIDLINE_POINTS = Set.of(8, 27, 28, 29, 30, 33, 51, 57, 62, 66);

  /** Mirroring subtracts from the width twice, which may round the last bit. */
  private static final double ROUND_TRIP_TOLERANCE = 1e-12;

  /** Half-width of a 3×3 mark plus one pixel. Mirroring copies pixels, so marks stay sharp. */
  private static final double MARK_RADIUS = 2.5;

  @Test
  void permutationHasOneIndexPerPoint() {
    assertEquals(Sample.POINTS, PERMUTATION.length);
  }

  @Test
  void permutationIsInvolution() {
    for (int i = 0; i < Sample.POINTS; i++) {
      assertEquals(i, PERMUTATION[PERMUTATION[i]], "point " + i);
    }
  }

  @Test
  void permutationFixesExactlyMidlinePoints() {
    Set<Integer> fixed = new TreeSet<>();
    for (int i = 0; i < Sample.POINTS; i++) {
      if (PERMUTATION[i] == i) {
        fixed.add(i);
      }
    }

    assertEquals(new TreeSet<>(MIDLINE_POINTS), fixed);
  }

  @Test
  void permutationSwapsNamedPairs() {
    int[][] pairs = {{0, 16}, {7, 9}, {17, 26}, {21, 22}, {31, 35}, {36, 45}, {40, 47}, {41, 46}};
    int[][] mouthPairs = {{48, 54}, {50, 52}, {55, 59}, {56, 58}, {60, 64}, {61, 63}, {65, 67}};

    for (int[] pair : pairs) {
      assertEquals(pair[1], PERMUTATION[pair[0]], "partner of point " + pair[0]);
    }
    for (int[] pair : mouthPairs) {
      assertEquals(pair[1], PERMUTATION[pair[0]], "partner of point " + pair[0]);
    }
  }

  @Test
  void mirrorKeepsMarksOnKeypoints() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample flipped = HorizontalFlip.mirror(sample);

    int checked = assertMarksOnKeypoints(flipped, MARK_RADIUS, 0, "mirror");
    assertEquals(Sample.POINTS, checked);
  }

  @Test
  void mirrorReversesPixelColumns() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    sample.image().set(0, 40, 0.25f);

    GrayImage flipped = HorizontalFlip.mirror(sample).image();

    for (int y = 0; y < 90; y++) {
      for (int x = 0; x < 120; x++) {
        assertEquals(sample.image().get(119 - x, y), flipped.get(x, y));
      }
    }
  }

  @Test
  void leftEyeCornerBecomesPointFortyFive() {
    // Only point 36 has a mark. Every other point, 45 included, lies on black.
    Sample marked = markedSample(120, 90, new int[][] {{30, 40}}, 3);
    double[] keypoints = new double[2 * Sample.POINTS];
    for (int i = 0; i < Sample.POINTS; i++) {
      keypoints[2 * i] = 90;
      keypoints[2 * i + 1] = 20;
    }
    keypoints[2 * 36] = 31.5;
    keypoints[2 * 36 + 1] = 41.5;
    Sample sample = marked.with(marked.image(), keypoints);

    Sample flipped = HorizontalFlip.mirror(sample);

    assertEquals(120 - 31.5, flipped.x(45));
    assertEquals(41.5, flipped.y(45));
    double[] at45 = centroid(flipped.image(), flipped.x(45), flipped.y(45), MARK_RADIUS);
    assertTrue(at45[2] >= MIN_MARK_MASS, "no mark at point 45, mass " + at45[2]);
    assertEquals(flipped.x(45), at45[0], CENTROID_TOLERANCE_PX);
    assertEquals(flipped.y(45), at45[1], CENTROID_TOLERANCE_PX);
    double[] at36 = centroid(flipped.image(), flipped.x(36), flipped.y(36), MARK_RADIUS);
    assertEquals(0, at36[2], "point 36 should now lie on black");
  }

  @Test
  void flipTwiceIsIdentity() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample twice = HorizontalFlip.mirror(HorizontalFlip.mirror(sample));

    assertEquals(sample.image(), twice.image());
    assertArrayEquals(sample.keypoints(), twice.keypoints(), ROUND_TRIP_TOLERANCE);
  }

  @Test
  void probabilityZeroNeverFlips() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    HorizontalFlip flip = new HorizontalFlip(0);
    Generator random = new Generator(3);

    for (int draw = 0; draw < 100; draw++) {
      assertSame(sample, flip.apply(sample, random));
    }
  }

  @Test
  void probabilityOneAlwaysFlips() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    Sample mirrored = HorizontalFlip.mirror(sample);
    HorizontalFlip flip = new HorizontalFlip(1);
    Generator random = new Generator(3);

    for (int draw = 0; draw < 100; draw++) {
      assertArrayEquals(mirrored.keypoints(), flip.apply(sample, random).keypoints());
    }
  }

  @Test
  void halfProbabilityFlipsAboutHalf() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    HorizontalFlip flip = new HorizontalFlip(0.5);
    Generator random = new Generator(11);
    int flips = 0;

    for (int draw = 0; draw < 1000; draw++) {
      if (flip.apply(sample, random) != sample) {
        flips++;
      }
    }

    // The binomial standard deviation is about 16, so 500 ± 80 is five of them.
    assertTrue(flips > 420, "flipped " + flips + " of 1000");
    assertTrue(flips < 580, "flipped " + flips + " of 1000");
  }

  @Test
  void flipReproducibleWithSeed() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    HorizontalFlip flip = new HorizontalFlip(0.5);
    Generator first = new Generator(5);
    Generator second = new Generator(5);

    for (int draw = 0; draw < 20; draw++) {
      assertArrayEquals(
          flip.apply(sample, first).keypoints(), flip.apply(sample, second).keypoints());
    }
  }

  @Test
  void invalidProbabilityRaisesError() {
    assertThrows(IllegalArgumentException.class, () -> new HorizontalFlip(1.5));
    assertThrows(IllegalArgumentException.class, () -> new HorizontalFlip(Double.NaN));
  }
}
