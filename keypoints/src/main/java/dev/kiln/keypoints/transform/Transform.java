package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;

/**
 * A preprocessing or augmentation step that maps a sample to a new one, moving the keypoints
 * exactly as it moves the image content.
 *
 * <p>Implementations never modify the input sample, its image or its keypoint array. Deterministic
 * transforms ignore the generator, and random ones draw from it, so the same seed gives the same
 * output.
 */
public interface Transform {

  /**
   * Returns the transformed copy of {@code sample}, drawing any random parameters from {@code
   * random}.
   */
  Sample apply(Sample sample, Generator random);
}
