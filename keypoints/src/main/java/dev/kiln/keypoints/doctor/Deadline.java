package dev.kiln.keypoints.doctor;

import java.time.Duration;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * The point at which an examination stops, measured on {@link System#nanoTime}, the clock of {@code
 * kiln train --time-limit}. That clock counts elapsed time only, so a step of the wall clock, such
 * as an NTP correction or a suspend and wake, does not move the deadline.
 *
 * <p>The deadline stores its start and its timeout rather than their sum, and compares elapsed time
 * with the timeout, so a timeout near {@link Long#MAX_VALUE} nanoseconds cannot overflow.
 */
public final class Deadline {
  private final LongSupplier clock;
  private final long start;
  private final long timeoutNanos;

  /**
   * Creates the deadline {@code timeoutNanos} after the reading {@code start} of {@code clock}. A
   * negative timeout counts as 0, a deadline that has passed.
   */
  Deadline(LongSupplier clock, long start, long timeoutNanos) {
    this.clock = Objects.requireNonNull(clock, "clock");
    this.start = start;
    this.timeoutNanos = Math.max(0, timeoutNanos);
  }

  /** Returns the deadline {@code timeout} from now. */
  public static Deadline after(Duration timeout) {
    return new Deadline(System::nanoTime, System.nanoTime(), saturatedNanos(timeout));
  }

  /**
   * Returns the deadline {@code timeout} after {@code startNanoTime}, a value that {@link
   * System#nanoTime} returned.
   */
  public static Deadline after(long startNanoTime, Duration timeout) {
    return new Deadline(System::nanoTime, startNanoTime, saturatedNanos(timeout));
  }

  /** Returns true once the timeout has elapsed. */
  public boolean passed() {
    return elapsedNanos() >= timeoutNanos;
  }

  /** Returns the time left until the deadline, or zero once it has passed. */
  public Duration remaining() {
    return Duration.ofNanos(Math.max(0, timeoutNanos - elapsedNanos()));
  }

  /**
   * Returns the nanoseconds since {@code start}, and 0 for a start that lies ahead. The readings
   * are subtracted, never compared, because {@link System#nanoTime} values may wrap past {@link
   * Long#MAX_VALUE}.
   */
  private long elapsedNanos() {
    return Math.max(0, clock.getAsLong() - start);
  }

  /** Returns {@code timeout} in nanoseconds, or the nearest long where it does not fit in one. */
  private static long saturatedNanos(Duration timeout) {
    try {
      return timeout.toNanos();
    } catch (ArithmeticException e) {
      return timeout.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
    }
  }

  @Override
  public String toString() {
    return "Deadline[remaining " + remaining() + "]";
  }
}
