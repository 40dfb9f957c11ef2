package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.INNER_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.SPREAD_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.assertMarksOnKeypoints;
import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RandomAffineTest {
  /**
   * Window half-width around a keypoint: a 3×3 mark scaled by up to 1.1 and turned 10° reaches 2.3
   * px from its centre, and bilinear blur adds one more pixel. Keypoints closer than this to the
   * frame are skipped, because the frame may cut their blurred mark.
   */
  private static final double MARK_RADIUS = 3.5;

  /** Rotations by multiples of 90° go through sin and cos of a rounded angle. */
  private static final double TRIG_TOLERANCE = 1e-9;

  /** Bilinear weights are floats, so an identity warp reproduces pixels only to float precision. */
  private static final double FLOAT_TOLERANCE = 1e-6;

  @ParameterizedTest
  @CsvSource({"-10, 0.9", "-10, 1.1", "10, 0.9", "10, 1.1", "0, 1.1", "10, 1.0"})
  void extremesKeepMarksOnKeypoints(double degrees, double scale) {
    Sample sample = markedSample(120, 90, INNER_MARKS, 3);

    Sample warped = RandomAffine.warp(sample, degrees, scale);

    String context = degrees + " degrees, scale " + scale;
    int checked = assertMarksOnKeypoints(warped, MARK_RADIUS, MARK_RADIUS, context);
    assertEquals(Sample.POINTS, checked, context + ": every mark stays in the frame");
  }

  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
  void seededDrawsKeepMarksOnKeypoints(long seed) {
    Sample sample = markedSample(120, 90, INNER_MARKS, 3);

    Sample warped = new RandomAffine(10, 0.9, 1.1).apply(sample, new Generator(seed));

    int checked = assertMarksOnKeypoints(warped, MARK_RADIUS, MARK_RADIUS, "seed " + seed);
    assertEquals(Sample.POINTS, checked);
  }

  @Test
  void cornerMarksFollowWhileInFrame() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample warped = RandomAffine.warp(sample, -7, 0.9);

    // The top-right corner mark leaves the frame and is skipped. The five interior marks, which
    // carry 33 of the keypoints, always stay.
    int checked = assertMarksOnKeypoints(warped, MARK_RADIUS, MARK_RADIUS, "-7 degrees, scale 0.9");
    assertTrue(checked >= 33, "checked only " + checked + " keypoints");
  }

  @Test
  void positiveAngleTurnsClockwise() {
    double[] keypoints = new double[2 * Sample.POINTS];
    keypoints[0] = 70;
    keypoints[1] = 45;
    Sample sample = new Sample("point", GrayImage.blank(120, 90), keypoints);

    Sample warped = RandomAffine.warp(sample, 90, 2);

    // (70, 45) is 10 px right of the centre (60, 45). A quarter turn at scale 2 puts it 20 px
    // below.
    assertEquals(60, warped.x(0), TRIG_TOLERANCE);
    assertEquals(65, warped.y(0), TRIG_TOLERANCE);
  }

  @Test
  void identityWarpKeepsSample() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample warped = RandomAffine.warp(sample, 0, 1);

    assertArrayEquals(sample.keypoints(), warped.keypoints());
    assertArrayEquals(sample.image().pixels(), warped.image().pixels(), (float) FLOAT_TOLERANCE);
  }

  @Test
  void outputKeepsInputSize() {
    Sample sample = markedSample(120, 90, INNER_MARKS, 3);

    Sample warped = new RandomAffine(10, 0.9, 1.1).apply(sample, new Generator(1));

    assertEquals(120, warped.image().width());
    assertEquals(90, warped.image().height());
  }

  @Test
  void uncoveredCornersAreBlack() {
    float[] white = new float[120 * 90];
    Arrays.fill(white, 1f);
    Sample sample = new Sample("white", new GrayImage(120, 90, white), new double[136]);

    GrayImage warped = RandomAffine.warp(sample, 10, 0.9).image();

    assertEquals(0f, warped.get(0, 0));
    assertEquals(0f, warped.get(119, 89));
    assertEquals(1f, warped.get(60, 45), FLOAT_TOLERANCE);
  }

  @Test
  void sameSeedGivesSameOutput() {
    Sample sample = markedSample(120, 90, INNER_MARKS, 3);
    RandomAffine affine = new RandomAffine(10, 0.9, 1.1);

    Sample first = affine.apply(sample, new Generator(9));
    Sample second = affine.apply(sample, new Generator(9));

    assertEquals(first.image(), second.image());
    assertArrayEquals(first.keypoints(), second.keypoints());
  }

  @Test
  void differentSeedsGiveDifferentOutput() {
    Sample sample = markedSample(120, 90, INNER_MARKS, 3);
    RandomAffine affine = new RandomAffine(10, 0.9, 1.1);

    Sample first = affine.apply(sample, new Generator(9));
    Sample second = affine.apply(sample, new Generator(10));

    assertNotEquals(first.x(0), second.x(0));
  }

  @Test
  void invalidRangesRaiseError() {
    assertThrows(IllegalArgumentException.class, () -> new RandomAffine(-1, 0.9, 1.1));
    assertThrows(IllegalArgumentException.class, () -> new RandomAffine(10, 0, 1.1));
    assertThrows(IllegalArgumentException.class, () -> new RandomAffine(10, 1.2, 1.1));
  }
}
