package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The speed shown by the progress bar and the epoch lines. */
class ProgressBarTest {

  @Test
  void rateInImagesPerSecond() {
    assertEquals("219.0 img/s", ProgressBar.rate(219));
    assertEquals("1.0 img/s", ProgressBar.rate(1));
    assertEquals("0.0 img/s", ProgressBar.rate(0));
  }

  @Test
  void slowRateInSecondsPerImage() {
    assertEquals("55.6 s/img", ProgressBar.rate(0.018));
    assertEquals("2.0 s/img", ProgressBar.rate(0.5));
  }
}
