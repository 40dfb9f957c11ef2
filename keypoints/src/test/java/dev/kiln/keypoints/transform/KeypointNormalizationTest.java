package dev.kiln.keypoints.transform;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class KeypointNormalizationTest {
  /** Normalizing and back costs two roundings of values below a few hundred. */
  private static final double ROUND_TRIP_TOLERANCE = 1e-12;

  private final KeypointNormalization normalization = new KeypointNormalization(96);

  @Test
  void roundTripRestoresPixels() {
    Generator random = new Generator(1);
    double[] pixels = new double[136];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = -50 + 200 * random.nextDouble();
    }

    double[] restored = normalization.denormalize(normalization.normalize(pixels));

    assertArrayEquals(pixels, restored, ROUND_TRIP_TOLERANCE);
  }

  @Test
  void inputEdgesMapToUnitRange() {
    double[] normalized = normalization.normalize(new double[] {0, 48, 96, 24});

    assertArrayEquals(new double[] {-1, 0, 1, -0.5}, normalized);
  }

  @Test
  void constantsAreHalfInputSize() {
    assertEquals(48, normalization.center());
    assertEquals(48, normalization.scale());
  }

  @Test
  void metadataRoundTripRestoresNormalization() {
    Map<String, String> metadata = new HashMap<>(normalization.toMetadata());
    metadata.put("optimizer", "adam");

    assertEquals(normalization, KeypointNormalization.fromMetadata(metadata));
  }

  @Test
  void metadataStatesConstants() {
    Map<String, String> metadata = normalization.toMetadata();

    assertEquals("96", metadata.get(KeypointNormalization.INPUT_SIZE_KEY));
    assertEquals("48.0", metadata.get(KeypointNormalization.CENTER_KEY));
    assertEquals("48.0", metadata.get(KeypointNormalization.SCALE_KEY));
  }

  @Test
  void missingSizeRaisesErrorNamingKey() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> KeypointNormalization.fromMetadata(Map.of("optimizer", "adam")));

    assertTrue(
        error.getMessage().contains(KeypointNormalization.INPUT_SIZE_KEY), error.getMessage());
  }

  @Test
  void conflictingCenterRaisesError() {
    Map<String, String> metadata = new HashMap<>(normalization.toMetadata());
    metadata.put(KeypointNormalization.CENTER_KEY, "0.0");

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> KeypointNormalization.fromMetadata(metadata));

    assertTrue(error.getMessage().contains(KeypointNormalization.CENTER_KEY), error.getMessage());
  }

  @Test
  void malformedSizeRaisesError() {
    Map<String, String> metadata = Map.of(KeypointNormalization.INPUT_SIZE_KEY, "ninety-six");

    assertThrows(
        IllegalArgumentException.class, () -> KeypointNormalization.fromMetadata(metadata));
  }

  @Test
  void nonPositiveSizeRaisesError() {
    assertThrows(IllegalArgumentException.class, () -> new KeypointNormalization(0));
  }
}
