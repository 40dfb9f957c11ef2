package dev.kiln.keypoints.eval;

/**
 * A group of the 68 facial keypoints, by zero-based point index as in the iBUG 300-W / Multi-PIE
 * 68-point markup: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, mouth 48–67.
 */
public enum Region {
  JAW("jaw", 0, 16),
  BROWS("brows", 17, 26),
  NOSE("nose", 27, 35),
  EYES("eyes", 36, 47),
  MOUTH("mouth", 48, 67);

  private final String label;
  private final int first;
  private final int last;

  Region(String label, int first, int last) {
    this.label = label;
    this.first = first;
    this.last = last;
  }

  /** Returns the lower-case name used in reports, for example {@code "jaw"}. */
  public String label() {
    return label;
  }

  /** Returns the index of the first point of the region. */
  public int first() {
    return first;
  }

  /** Returns the index of the last point of the region, inclusive. */
  public int last() {
    return last;
  }

  /** Returns the number of points in the region. */
  public int size() {
    return last - first + 1;
  }
}
