package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;
import java.util.List;

/** A chain of transforms applied in list order, each to the output of the one before. */
public record Compose(List<Transform> transforms) implements Transform {

  public Compose {
    transforms = List.copyOf(transforms);
  }

  /** Returns a chain of the given transforms, in that order. */
  public static Compose of(Transform... transforms) {
    return new Compose(List.of(transforms));
  }

  @Override
  public Sample apply(Sample sample, Generator random) {
    Sample current = sample;
    for (Transform transform : transforms) {
      current = transform.apply(current, random);
    }
    return current;
  }
}
