package dev.kiln.keypoints.doctor;

/**
 * Thrown inside a check whose training loop reaches {@link DoctorOptions#deadline()}, so that
 * {@link Doctor#examine} stops the examination there.
 */
final class DeadlineReached extends RuntimeException {
  private static final long serialVersionUID = 1L;

  DeadlineReached() {
    super("the examination reached its deadline", null, false, false);
  }

  /** Throws when {@code options} has a deadline that has passed. */
  static void check(DoctorOptions options) {
    if (options.pastDeadline()) {
      throw new DeadlineReached();
    }
  }
}
