package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * Checks how {@link CpuParallel#forEachChunk(int, CpuParallel.RangeBody)} ends when chunks throw.
 * The core module's test configuration sets {@code kiln.threads=2}, so a range of two items runs as
 * two chunks on the pool.
 */
class CpuParallelTest {

  /** How long the slow chunk sleeps before it writes, long enough to outlast the failing one. */
  private static final long SLOW_CHUNK_MILLIS = 300;

  @Test
  void rangeOfTwoSplitsIntoTwoChunks() {
    assertEquals(2, CpuParallel.chunkCount(2), "set -Dkiln.threads=2 for the core tests");
  }

  @Test
  void failingChunkWaitsForSlowChunk() {
    AtomicBoolean slowChunkWrote = new AtomicBoolean();

    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                CpuParallel.forEachChunk(
                    2,
                    (chunk, start, end) -> {
                      if (chunk == 0) {
                        throw new IllegalStateException("chunk 0 failed");
                      }
                      sleep(SLOW_CHUNK_MILLIS);
                      slowChunkWrote.set(true);
                    }));

    assertEquals("chunk 0 failed", rootMessage(e));
    assertTrue(slowChunkWrote.get(), "forEachChunk threw before the slow chunk finished");
  }

  @Test
  void laterFailuresAreSuppressed() {
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                CpuParallel.forEachChunk(
                    2,
                    (chunk, start, end) -> {
                      if (chunk == 1) {
                        // Chunk 1 fails first in time, but chunk 0's exception is the one thrown.
                        throw new IllegalStateException("chunk 1 failed");
                      }
                      sleep(SLOW_CHUNK_MILLIS);
                      throw new IllegalStateException("chunk 0 failed");
                    }));

    assertEquals("chunk 0 failed", rootMessage(e));
    assertEquals(1, e.getSuppressed().length, "suppressed exceptions");
    assertEquals("chunk 1 failed", rootMessage(e.getSuppressed()[0]));
  }

  /**
   * Returns the message of the innermost cause. {@link java.util.concurrent.ForkJoinTask#join} may
   * rethrow a worker's exception as a new exception of the same type that wraps the original.
   */
  private static String rootMessage(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null) {
      root = root.getCause();
    }
    return root.getMessage();
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while sleeping", e);
    }
  }
}
