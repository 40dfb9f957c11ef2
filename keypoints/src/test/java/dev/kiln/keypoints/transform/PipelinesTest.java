package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.SPREAD_MARKS;
import static dev.kiln.keypoints.transform.MarkedSamples.assertMarksOnKeypoints;
import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class PipelinesTest {
  private static final int INPUT_SIZE = 96;

  /** Rescaling and its inverse each round once, on keypoints below a few hundred pixels. */
  private static final double INVERSE_TOLERANCE = 1e-9;

  /**
   * Marks on a 100×100 image: four near the corners, which the 96 px crop often cuts, and five
   * inner ones.
   */
  private static final int[][] SQUARE_MARKS = {
    {2, 2}, {95, 2}, {2, 95}, {95, 95}, {48, 48}, {25, 30}, {70, 25}, {30, 70}, {68, 66}
  };

  @ParameterizedTest
  @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
  void trainingKeepsMarksOnKeypoints(long seed) {
    Sample sample = markedSample(100, 100, SQUARE_MARKS, 3);

    Sample augmented = Pipelines.training(INPUT_SIZE).apply(sample, new Generator(seed));

    // The rescale (1.1) and the affine scale (up to 1.1) make a mark up to 3.6 px wide, which
    // reaches 2.6 px from its centre when turned, and each bilinear step adds 1 px of blur.
    int checked = assertMarksOnKeypoints(augmented, 4.5, 4.5, "seed " + seed);
    // Every one of 3000 seeds tried kept at least two inner marks, 14 keypoints, in frame.
    assertTrue(checked >= 14, "checked only " + checked + " keypoints");
  }

  @Test
  void trainingOutputsInputSize() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample augmented = Pipelines.training(INPUT_SIZE).apply(sample, new Generator(1));

    assertEquals(INPUT_SIZE, augmented.image().width());
    assertEquals(INPUT_SIZE, augmented.image().height());
  }

  @Test
  void trainingReproducibleWithSeed() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);
    Compose training = Pipelines.training(INPUT_SIZE);

    Sample first = training.apply(sample, new Generator(77));
    Sample second = training.apply(sample, new Generator(77));

    assertEquals(first.image(), second.image());
    assertArrayEquals(first.keypoints(), second.keypoints());
  }

  @Test
  void evaluationKeepsMarksOnKeypoints() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample prepared = Pipelines.evaluation(INPUT_SIZE).apply(sample, new Generator(0));

    // 120×90 becomes 147×110, so a mark is 3.7 px wide, and bilinear blur adds 1 px. The crop
    // offset is (25, 7), which leaves marks 5, 6 and 7 with 7 keypoints each in the frame.
    int checked = assertMarksOnKeypoints(prepared, 3.5, 3, "evaluation");
    assertEquals(21, checked);
  }

  @ParameterizedTest
  @CsvSource({"120, 90", "90, 120", "101, 77", "250, 250", "110, 130", "111, 500"})
  void evaluationInverseRestoresOriginalKeypoints(int width, int height) {
    Generator random = new Generator(width * 1000L + height);
    double[] keypoints = new double[2 * Sample.POINTS];
    for (int i = 0; i < Sample.POINTS; i++) {
      keypoints[2 * i] = random.nextDouble() * width;
      keypoints[2 * i + 1] = random.nextDouble() * height;
    }
    Sample sample = markedSample(width, height, new int[][] {{0, 0}}, 3);
    sample = sample.with(sample.image(), keypoints);

    Sample prepared = Pipelines.evaluation(INPUT_SIZE).apply(sample, new Generator(0));
    UnaryOperator<double[]> inverse = Pipelines.evaluationInverse(width, height, INPUT_SIZE);

    assertArrayEquals(keypoints, inverse.apply(prepared.keypoints()), INVERSE_TOLERANCE);
  }

  @Test
  void rescaledSideAddsFifteenPercent() {
    assertEquals(110, Pipelines.rescaledSide(96));
    assertEquals(258, Pipelines.rescaledSide(224));
  }

  @Test
  void composeAppliesInListOrder() {
    Sample sample = markedSample(120, 90, SPREAD_MARKS, 3);

    Sample cropFirst = Compose.of(new CenterCrop(50), new Rescale(100)).apply(sample, null);
    Sample rescaleFirst = Compose.of(new Rescale(100), new CenterCrop(50)).apply(sample, null);

    assertEquals(100, cropFirst.image().width());
    assertEquals(50, rescaleFirst.image().width());
  }
}
