package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class MedianShapeTest {

  /** Returns a batch of {@code rows.length / width} faces whose targets are {@code rows}. */
  static Batch batch(int width, float... rows) {
    int faces = rows.length / width;
    List<String> names = new ArrayList<>();
    for (int i = 0; i < faces; i++) {
      names.add("face" + i + ".jpg");
    }
    return new Batch(
        Tensor.zeros(DType.FLOAT32, faces, 1, 2, 2), Tensor.of(rows, faces, width), names);
  }

  @Test
  void medianNullBeforeFirstBatch() {
    assertNull(new MedianShape().median());
  }

  @Test
  void medianOfOddCountIsMiddleValue() {
    MedianShape shape = new MedianShape();
    shape.add(batch(2, 5, -1, 1, 7));
    shape.add(batch(2, 3, 2));

    assertArrayEquals(new float[] {3, 2}, shape.median());
  }

  /** Columns (4, 1, 10, 2) and (0, 0, -3, 8): the middle values are 2 and 4, and 0 and 0. */
  @Test
  void medianOfEvenCountAveragesMiddleValues() {
    MedianShape shape = new MedianShape();
    shape.add(batch(2, 4, 0, 1, 0));
    shape.add(batch(2, 10, -3, 2, 8));

    assertArrayEquals(new float[] {3, 0}, shape.median());
  }

  /** Faces after the first MAX_FACES are not kept, so they cannot move the median. */
  @Test
  void medianKeepsFirstMaxFaces() {
    MedianShape shape = new MedianShape();
    float[] ones = new float[MedianShape.MAX_FACES - 1];
    Arrays.fill(ones, 1);
    shape.add(batch(1, ones));
    shape.add(batch(1, 1, 50, 50));
    float[] large = new float[MedianShape.MAX_FACES];
    Arrays.fill(large, 50);
    shape.add(batch(1, large));

    assertArrayEquals(new float[] {1}, shape.median());
  }
}
