package dev.kiln.keypoints.doctor;

/** How urgent a {@link Finding} is, from the most to the least urgent. */
public enum Severity {
  /** Training cannot work until this is fixed. */
  CRITICAL,
  /** Training works worse than it could, or a setting is outside its usual range. */
  WARNING,
  /** A measurement for reference, with nothing to fix. */
  INFO
}
