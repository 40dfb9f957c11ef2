package dev.kiln.keypoints.train;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.transform.Transform;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

/**
 * Prepares the batches of one epoch on background threads while the model trains on the current
 * one, and measures how long the training loop waits for them.
 *
 * <p>The result does not depend on the number of threads or their timing: the epoch's order comes
 * from a generator seeded by (seed, epoch), and each sample's augmentation from a generator seeded
 * by (seed, epoch, position in the epoch). So a run resumed at batch k of epoch e sees exactly the
 * batches it would have seen.
 */
public final class BatchLoader implements AutoCloseable {
  private final List<Sample> samples;
  private final Transform transform;
  private final Function<List<Sample>, Batch> collate;
  private final int[] order;
  private final int batchSize;
  private final long seed;
  private final int epoch;
  private final ExecutorService workers;
  private final Deque<Future<Batch>> pending = new ArrayDeque<>();
  private final int prefetch;
  private int nextToSubmit;
  private int nextToReturn;
  private long waitNanos;

  /**
   * @param samples the data set; it is read, never changed
   * @param transform the augmentation or evaluation pipeline
   * @param collate turns transformed samples into tensors
   * @param batchSize faces per batch; the last batch of an epoch may be smaller
   * @param shuffle visit the samples in a seeded random order, else in list order
   * @param seed the run's seed
   * @param epoch the epoch number, which varies the order and the augmentation
   * @param threads background threads; 0 prepares each batch on the calling thread
   * @param firstBatch the batch to start from, for a run resumed mid-epoch
   */
  public BatchLoader(
      List<Sample> samples,
      Transform transform,
      Function<List<Sample>, Batch> collate,
      int batchSize,
      boolean shuffle,
      long seed,
      int epoch,
      int threads,
      int firstBatch) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be at least 1, got " + batchSize);
    }
    this.samples = samples;
    this.transform = transform;
    this.collate = collate;
    this.batchSize = batchSize;
    this.seed = seed;
    this.epoch = epoch;
    this.order = shuffle ? shuffledOrder(samples.size(), mix(seed, epoch, -1)) : identity(samples);
    this.workers = threads > 0 ? Executors.newFixedThreadPool(threads, BatchLoader::daemon) : null;
    this.prefetch = Math.max(2, 2 * threads);
    this.nextToSubmit = firstBatch;
    this.nextToReturn = firstBatch;
  }

  /** Number of batches in the epoch, counting a smaller last batch. */
  public int batchCount() {
    return batchCount(order.length, batchSize);
  }

  /**
   * Returns the number of batches of {@code batchSize} that {@code faces} fill, the last one part
   * way.
   */
  static int batchCount(int faces, int batchSize) {
    return (faces + batchSize - 1) / batchSize;
  }

  public boolean hasNext() {
    return nextToReturn < batchCount();
  }

  /** Index within the epoch of the batch that {@link #next()} returns next. */
  public int nextIndex() {
    return nextToReturn;
  }

  /** Returns the next batch, waiting for the background threads when it is not ready. */
  public Batch next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the epoch has " + batchCount() + " batches");
    }
    if (workers == null) {
      return build(nextToReturn++);
    }
    while (nextToSubmit < batchCount() && pending.size() < prefetch) {
      int index = nextToSubmit++;
      pending.add(workers.submit(() -> build(index)));
    }
    long start = System.nanoTime();
    try {
      Batch batch = pending.removeFirst().get();
      nextToReturn++;
      return batch;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for a batch", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Error error) {
        // Such as OutOfMemoryError, which the command line reports with advice of its own.
        throw error;
      }
      throw new IllegalStateException(
          "preparing batch " + nextToReturn + " failed: " + e.getCause().getMessage(),
          e.getCause());
    } finally {
      waitNanos += System.nanoTime() - start;
    }
  }

  /** Total time that {@link #next()} spent waiting for batches, in nanoseconds. */
  public long waitNanos() {
    return waitNanos;
  }

  private Batch build(int batchIndex) {
    int from = batchIndex * batchSize;
    int to = Math.min(order.length, from + batchSize);
    List<Sample> transformed = new ArrayList<>(to - from);
    for (int position = from; position < to; position++) {
      Generator random = new Generator(mix(seed, epoch, position));
      transformed.add(transform.apply(samples.get(order[position]), random));
    }
    return collate.apply(transformed);
  }

  /** Combines the run's seed, the epoch and a position into one well-spread seed. */
  static long mix(long seed, int epoch, int position) {
    long h = seed * 0x9E3779B97F4A7C15L;
    h ^= (epoch + 1L) * 0xC2B2AE3D27D4EB4FL;
    h ^= (position + 2L) * 0x165667B19E3779F9L;
    return h ^ (h >>> 29);
  }

  private static int[] shuffledOrder(int size, long shuffleSeed) {
    int[] result = identity(size);
    Generator random = new Generator(shuffleSeed);
    for (int i = size - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int swap = result[i];
      result[i] = result[j];
      result[j] = swap;
    }
    return result;
  }

  private static int[] identity(List<Sample> samples) {
    return identity(samples.size());
  }

  private static int[] identity(int size) {
    int[] result = new int[size];
    for (int i = 0; i < size; i++) {
      result[i] = i;
    }
    return result;
  }

  private static Thread daemon(Runnable task) {
    Thread thread = new Thread(task, "kiln-batch-loader");
    thread.setDaemon(true);
    return thread;
  }

  @Override
  public void close() {
    if (workers != null) {
      workers.shutdownNow();
    }
  }
}
