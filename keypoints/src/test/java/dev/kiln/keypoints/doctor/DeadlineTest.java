package dev.kiln.keypoints.doctor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The examination deadline on a clock that the test sets, in place of System.nanoTime. */
class DeadlineTest {

  @Test
  void passesAfterTimeoutElapses() {
    AtomicLong nanoTime = new AtomicLong(40);
    Deadline deadline = new Deadline(nanoTime::get, 40, 1_000);

    assertFalse(deadline.passed());
    assertEquals(Duration.ofNanos(1_000), deadline.remaining());
    nanoTime.set(1_039);
    assertFalse(deadline.passed());
    assertEquals(Duration.ofNanos(1), deadline.remaining());
    nanoTime.set(1_040);
    assertTrue(deadline.passed());
    assertEquals(Duration.ZERO, deadline.remaining());
  }

  @Test
  void clockWrapKeepsDeadline() {
    long start = Long.MAX_VALUE - 10;
    AtomicLong nanoTime = new AtomicLong(start);
    Deadline deadline = new Deadline(nanoTime::get, start, 100);

    nanoTime.addAndGet(99);
    assertTrue(nanoTime.get() < 0, "the clock has wrapped");
    assertFalse(deadline.passed());
    nanoTime.addAndGet(1);
    assertTrue(deadline.passed());
  }

  @Test
  void hugeTimeoutNeverOverflows() {
    Deadline centuries = Deadline.after(Duration.ofDays(365L * 1_000));
    Deadline longest = Deadline.after(System.nanoTime(), Duration.ofSeconds(Long.MAX_VALUE));

    assertFalse(centuries.passed());
    assertFalse(longest.passed());
    assertTrue(longest.remaining().compareTo(Duration.ofDays(365L * 200)) > 0);
  }

  @Test
  void negativeTimeoutHasPassed() {
    Deadline deadline = Deadline.after(Duration.ofSeconds(-1));

    assertTrue(deadline.passed());
    assertEquals(Duration.ZERO, deadline.remaining());
  }

  @Test
  void clockBeforeStartCountsNoTime() {
    AtomicLong nanoTime = new AtomicLong(0);
    Deadline deadline = new Deadline(nanoTime::get, 500, 1_000);

    assertFalse(deadline.passed());
    assertEquals(Duration.ofNanos(1_000), deadline.remaining());
  }
}
