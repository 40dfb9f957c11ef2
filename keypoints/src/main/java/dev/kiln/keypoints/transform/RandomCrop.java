package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;

/**
 * Cuts a {@code size × size} window at an offset drawn uniformly from every position that fits
 * inside the image (whole pixels, so no resampling). Keypoints shift by the offset.
 */
public final class RandomCrop implements Transform {
  private final int size;

  /** Creates a random square crop of side {@code size} pixels. */
  public RandomCrop(int size) {
    Crops.requirePositiveSize(size);
    this.size = size;
  }

  /** Returns the side of the crop, in pixels. */
  public int size() {
    return size;
  }

  /**
   * Returns the cropped sample. Draws the left offset first, then the top one.
   *
   * @throws IllegalArgumentException if the image is narrower or shorter than the crop
   */
  @Override
  public Sample apply(Sample sample, Generator random) {
    Crops.requireFits(sample, size);
    int left = random.nextInt(sample.image().width() - size + 1);
    int top = random.nextInt(sample.image().height() - size + 1);
    return Crops.crop(sample, left, top, size);
  }
}
