package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.FaceDataset.OnBadRow;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Loading parts of the real face keypoint dataset; skipped when it is not present. */
class FaceDatasetRealDataTest {

  private static final int ROWS = 200;

  @Test
  void realTrainingRowsLoadInside() throws IOException {
    Path data = TestData.facialKeypoints();
    LoadOptions options = LoadOptions.defaults().withOnBadRow(OnBadRow.SKIP).withThreads(2);

    FaceDataset.Loaded loaded =
        FaceDataset.load(
            data.resolve("training_frames_keypoints.csv"),
            data.resolve("training"),
            options.withLimit(ROWS));

    assertEquals(ROWS, loaded.samples().size(), loaded.report().summary());
    assertEquals(0, loaded.report().skippedCount(), loaded.report().summary());
    for (Sample sample : loaded.samples()) {
      assertAllInside(sample);
    }
  }

  @Test
  void realRescaledRowsStayInside() throws IOException {
    Path data = TestData.facialKeypoints();
    LoadOptions options =
        LoadOptions.defaults().withThreads(2).withShorterSide(100).withLimit(ROWS / 4);

    FaceDataset.Loaded loaded =
        FaceDataset.load(
            data.resolve("training_frames_keypoints.csv"), data.resolve("training"), options);

    for (Sample sample : loaded.samples()) {
      int shorter = Math.min(sample.image().width(), sample.image().height());
      assertEquals(100, shorter, sample.name());
      assertAllInside(sample);
    }
  }

  @Test
  void realRawSampleLoadsCompletely() throws IOException {
    Path folder = TestData.facialKeypoints().resolve("raw-sample");
    LoadOptions options = LoadOptions.defaults().withOnBadRow(OnBadRow.SKIP).withThreads(2);

    FaceDataset.Loaded loaded =
        FaceDataset.load(folder.resolve("raw_sample_keypoints.csv"), folder, options);

    assertEquals(0, loaded.report().skippedCount(), loaded.report().summary());
    assertTrue(loaded.report().loaded() > 0, loaded.report().summary());
  }

  private static void assertAllInside(Sample sample) {
    for (int i = 0; i < Sample.POINTS; i++) {
      double x = sample.x(i);
      double y = sample.y(i);
      String where =
          sample.name() + " point " + i + " at (" + x + ", " + y + ") in " + sample.image();
      assertTrue(x >= 0, where);
      assertTrue(x <= sample.image().width(), where);
      assertTrue(y >= 0, where);
      assertTrue(y <= sample.image().height(), where);
    }
  }
}
