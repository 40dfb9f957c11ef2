package dev.kiln.keypoints.data;

import java.nio.file.Path;

/** Default location of the dataset, used by the commands when no {@code --data} is given. */
public final class DataLocation {
  /** Environment variable naming a folder that contains {@code facial-keypoints/}. */
  public static final String ENVIRONMENT = "KILN_DATA";

  private DataLocation() {}

  /**
   * Returns {@code $KILN_DATA/facial-keypoints} when KILN_DATA is set, else {@code
   * data/facial-keypoints} relative to the working folder, where {@code fetch-data} unpacks.
   */
  public static Path defaultFolder() {
    String fromEnvironment = System.getenv(ENVIRONMENT);
    return fromEnvironment != null && !fromEnvironment.isBlank()
        ? Path.of(fromEnvironment, "facial-keypoints")
        : Path.of("data", "facial-keypoints");
  }
}
