package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;

/**
 * Cuts the central {@code size × size} window. The offset is {@code (length - size) / 2} rounded
 * down on each axis, so the crop stays on whole pixels. Keypoints shift by that offset.
 */
public final class CenterCrop implements Transform {
  private final int size;

  /** Creates a centre square crop of side {@code size} pixels. */
  public CenterCrop(int size) {
    Crops.requirePositiveSize(size);
    this.size = size;
  }

  /** Returns the side of the crop, in pixels. */
  public int size() {
    return size;
  }

  /** Returns the left (or top) offset of the crop in an image side of {@code length} pixels. */
  public int offset(int length) {
    return (length - size) / 2;
  }

  /**
   * Returns the cropped sample.
   *
   * @throws IllegalArgumentException if the image is narrower or shorter than the crop
   */
  @Override
  public Sample apply(Sample sample, Generator random) {
    Crops.requireFits(sample, size);
    int left = offset(sample.image().width());
    int top = offset(sample.image().height());
    return Crops.crop(sample, left, top, size);
  }
}
