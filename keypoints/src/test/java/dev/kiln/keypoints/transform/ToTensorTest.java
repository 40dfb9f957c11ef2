package dev.kiln.keypoints.transform;

import static dev.kiln.keypoints.transform.MarkedSamples.markedSample;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;
import java.util.List;
import org.junit.jupiter.api.Test;

class ToTensorTest {
  /** Keypoints are stored as float32, which keeps about seven significant digits. */
  private static final double FLOAT_TOLERANCE = 1e-6;

  private static final KeypointNormalization NORMALIZATION = new KeypointNormalization(40);

  private static List<Sample> batch() {
    Sample first = markedSample(40, 40, new int[][] {{3, 5}, {30, 20}}, 3);
    Sample second = markedSample(40, 40, new int[][] {{10, 30}, {25, 8}, {35, 35}}, 2);
    second.image().set(0, 0, 0.5f);
    return List.of(first, second);
  }

  @Test
  void imagesHaveBatchShape() {
    Tensor images = ToTensor.images(batch());

    assertArrayEquals(new int[] {2, 1, 40, 40}, images.shape());
    assertEquals(DType.FLOAT32, images.dtype());
  }

  @Test
  void imageValuesKeepPixelOrder() {
    List<Sample> samples = batch();

    Tensor images = ToTensor.images(samples);

    for (int n = 0; n < samples.size(); n++) {
      GrayImage image = samples.get(n).image();
      for (int y = 0; y < 40; y++) {
        for (int x = 0; x < 40; x++) {
          assertEquals(
              image.get(x, y), images.get(n, 0, y, x), "sample " + n + " (" + x + ", " + y + ")");
        }
      }
    }
  }

  @Test
  void keypointsHaveBatchShape() {
    Tensor keypoints = ToTensor.keypoints(batch(), NORMALIZATION);

    assertArrayEquals(new int[] {2, 136}, keypoints.shape());
    assertEquals(DType.FLOAT32, keypoints.dtype());
  }

  @Test
  void keypointValuesAreNormalized() {
    List<Sample> samples = batch();

    Tensor keypoints = ToTensor.keypoints(samples, NORMALIZATION);

    for (int n = 0; n < samples.size(); n++) {
      double[] pixels = samples.get(n).keypoints();
      for (int i = 0; i < pixels.length; i++) {
        double expected = (pixels[i] - 20) / 20;
        assertEquals(expected, keypoints.get(n, i), FLOAT_TOLERANCE, "sample " + n + " value " + i);
      }
    }
  }

  @Test
  void mixedSizesRaiseErrorNamingSample() {
    Sample square = markedSample(40, 40, new int[][] {{3, 5}}, 3);
    Sample wide = markedSample(48, 40, new int[][] {{3, 5}}, 3);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> ToTensor.images(List.of(square, wide)));

    assertTrue(error.getMessage().contains(wide.name()), error.getMessage());
  }

  @Test
  void normalizationSizeMismatchRaisesError() {
    assertThrows(
        IllegalArgumentException.class,
        () -> ToTensor.keypoints(batch(), new KeypointNormalization(96)));
  }

  @Test
  void emptyBatchRaisesError() {
    assertThrows(IllegalArgumentException.class, () -> ToTensor.images(List.of()));
  }
}
