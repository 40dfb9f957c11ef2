package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Location of the real face keypoint dataset: system property {@code kiln.data}, else environment
 * variable {@code KILN_DATA}, else {@code ../shared/data} next to the repository root. Tests that
 * need it are skipped when it is missing.
 */
public final class TestData {

  private TestData() {}

  /** Returns {@code <data>/facial-keypoints}, or skips the test if it does not exist. */
  public static Path facialKeypoints() {
    Path folder = dataRoot().resolve("facial-keypoints");
    assumeTrue(
        Files.isDirectory(folder),
        "skipped: face dataset not found at "
            + folder
            + "; set -Dkiln.data or KILN_DATA to the folder that contains facial-keypoints");
    return folder;
  }

  private static Path dataRoot() {
    String property = System.getProperty("kiln.data");
    if (property != null && !property.isBlank()) {
      return Path.of(property);
    }
    String environment = System.getenv("KILN_DATA");
    if (environment != null && !environment.isBlank()) {
      return Path.of(environment);
    }

    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.exists(dir.resolve(".git"))) {
      dir = dir.getParent();
    }
    Path root = dir != null ? dir : Path.of("").toAbsolutePath();
    return root.resolve("../shared/data").normalize();
  }
}
