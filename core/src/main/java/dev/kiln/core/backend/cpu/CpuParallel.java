package dev.kiln.core.backend.cpu;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * The shared worker pool of the CPU kernels and its one scheduling primitive, a static split of an
 * index range into contiguous chunks.
 *
 * <p>The thread count comes from the system property {@code kiln.threads} and defaults to {@link
 * Runtime#availableProcessors()}. Work is never balanced at run time: chunk t of a range depends
 * only on the range and the chunk count of {@link #chunkCount(int)}. That count is the thread count
 * capped by the range's length, and 1 when the caller is itself a pool worker. So a kernel whose
 * chunks write disjoint outputs gives the same bits on every run, and one whose per-chunk partial
 * sums are added in chunk order gives the same bits on every run with the same chunk count.
 */
public final class CpuParallel {

  /** Number of chunks a range is split into, at least 1. */
  private static final int THREADS = readThreadCount();

  /** Pool that runs the chunks; null when {@link #THREADS} is 1. */
  private static final ForkJoinPool POOL = THREADS > 1 ? new ForkJoinPool(THREADS) : null;

  private CpuParallel() {}

  /** A body that handles the index range [start, end) of a split as chunk {@code chunk}. */
  @FunctionalInterface
  public interface RangeBody {
    void run(int chunk, int start, int end);
  }

  /** Returns the configured thread count, which is also the maximum number of chunks. */
  public static int threads() {
    return THREADS;
  }

  /**
   * Returns how many chunks {@link #forEachChunk} splits a range of {@code count} items into: the
   * thread count, but no more than {@code count}, and 1 when called from a pool worker so that
   * nested kernels run serially instead of queueing behind their callers.
   */
  public static int chunkCount(int count) {
    if (POOL == null || count <= 1 || ForkJoinTask.getPool() == POOL) {
      return 1;
    }
    return Math.min(THREADS, count);
  }

  /**
   * Splits [0, count) into {@link #chunkCount(int)} contiguous chunks of near-equal size, in index
   * order, and runs {@code body} once per chunk, on the pool when there is more than one chunk.
   * Returns only when every chunk has finished, also when some of them throw, so that no chunk
   * still writes the caller's output after this method has returned or thrown. It then rethrows the
   * exception of the lowest-numbered chunk that failed, with those of later chunks added to it as
   * suppressed exceptions.
   */
  public static void forEachChunk(int count, RangeBody body) {
    int chunks = chunkCount(count);
    if (chunks == 1) {
      if (count > 0) {
        body.run(0, 0, count);
      }
      return;
    }
    List<ForkJoinTask<?>> tasks = new ArrayList<>(chunks);
    for (int t = 0; t < chunks; t++) {
      int chunk = t;
      int start = chunkStart(count, chunks, t);
      int end = chunkStart(count, chunks, t + 1);
      tasks.add(POOL.submit(() -> body.run(chunk, start, end)));
    }
    Throwable failure = null;
    for (ForkJoinTask<?> task : tasks) {
      try {
        task.join();
      } catch (RuntimeException | Error e) {
        if (failure == null) {
          failure = e;
        } else if (failure != e) {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure instanceof RuntimeException e) {
      throw e;
    }
    if (failure instanceof Error e) {
      throw e;
    }
  }

  /**
   * Runs {@code body} as {@link #forEachChunk(int, RangeBody)} does when {@code work} is at least
   * {@code minWork}. Below it, runs {@code body} once over [0, count) on the calling thread,
   * because handing a small job to the pool costs more than it saves. Callers measure {@code work}
   * in the unit of their own threshold: elements, or multiply-adds.
   */
  public static void forEachChunk(int count, long work, long minWork, RangeBody body) {
    if (work >= minWork) {
      forEachChunk(count, body);
    } else if (count > 0) {
      body.run(0, 0, count);
    }
  }

  /** Returns the first index of chunk {@code t} when [0, count) is split into {@code chunks}. */
  public static int chunkStart(int count, int chunks, int t) {
    return (int) ((long) count * t / chunks);
  }

  private static int readThreadCount() {
    String value = System.getProperty("kiln.threads");
    if (value == null || value.isBlank()) {
      return Math.max(1, Runtime.getRuntime().availableProcessors());
    }
    try {
      int threads = Integer.parseInt(value.trim());
      if (threads < 1) {
        throw new IllegalArgumentException(
            "kiln.threads must be at least 1, got " + threads + ": set -Dkiln.threads=1 or more");
      }
      return threads;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "kiln.threads must be an integer, got '" + value + "': set for example -Dkiln.threads=2",
          e);
    }
  }
}
