package dev.kiln.keypoints.data;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loader of a face keypoint dataset, a {@link KeypointsCsv} file plus a folder with its images,
 * into memory as {@link Sample}s in CSV order.
 *
 * <p>A row is bad if the CSV row is invalid, its image is missing, unreadable, truncated or smaller
 * than {@link LoadOptions#minSize()}, or one of its keypoints lies further beyond an image edge
 * than {@link LoadOptions#maxOutsideFraction()} of the image size. {@link OnBadRow} decides whether
 * a bad row stops loading or is skipped and listed in the {@link LoadReport}.
 */
public final class FaceDataset {
  private static final Logger LOG = LoggerFactory.getLogger(FaceDataset.class);

  /** Number of skipped rows logged one by one before the log only counts them. */
  private static final int LOGGED_BAD_ROWS = 20;

  private FaceDataset() {}

  /** Policy for bad rows in {@link FaceDataset#load}. */
  public enum OnBadRow {
    /** Throw a {@link BadRowException} for the first bad row in CSV order. */
    FAIL,
    /** Skip the row and list it in the {@link LoadReport}. */
    SKIP
  }

  /**
   * The loaded samples and the report on skipped rows.
   *
   * @param samples the samples in CSV order
   * @param report counts and skipped rows, for the caller to print
   */
  public record Loaded(List<Sample> samples, LoadReport report) {

    public Loaded {
      samples = List.copyOf(samples);
    }
  }

  /**
   * Loads the rows of {@code csv} with their images from {@code imageDir}. Images are decoded by
   * {@link LoadOptions#threads()} threads and, if {@link LoadOptions#shorterSide()} is set,
   * rescaled at once (see {@link ImageResize}: area averaging when shrinking, bilinear when
   * enlarging).
   *
   * @throws BadRowException under {@link OnBadRow#FAIL}, for the first bad row
   * @throws IOException if the CSV file or the image folder is missing, the CSV header is wrong, or
   *     loading is interrupted
   */
  public static Loaded load(Path csv, Path imageDir, LoadOptions options) throws IOException {
    long startNanos = System.nanoTime();
    // The CSV comes first, so that a wrong CSV path is not reported as a wrong image folder.
    KeypointsCsv.Contents contents = KeypointsCsv.parse(csv, options.limit());
    if (Files.isRegularFile(imageDir)) {
      throw new FileSystemException(
          imageDir.toString(),
          null,
          "is a file, but the images must be in a folder; pass the folder that holds them");
    }
    if (!Files.isDirectory(imageDir)) {
      throw new NoSuchFileException(
          imageDir.toString(), null, "image folder not found; check the dataset path");
    }

    List<KeypointsCsv.Row> rows = contents.rows();
    int total = rows.size() + contents.badRows().size();
    LOG.info(
        "Loading {} rows from {} with images from {} on {} threads",
        total,
        csv,
        imageDir,
        options.threads());

    // Under FAIL only the rows before the first bad CSV row need decoding.
    int firstBadCsvLine =
        contents.badRows().isEmpty()
            ? Integer.MAX_VALUE
            : contents.badRows().getFirst().lineNumber();
    if (options.onBadRow() == OnBadRow.FAIL) {
      rows = rows.stream().filter(row -> row.lineNumber() < firstBadCsvLine).toList();
    }

    List<Sample> samples = new ArrayList<>(rows.size());
    List<BadRow> skipped = new ArrayList<>(contents.badRows());
    ExecutorService pool = Executors.newFixedThreadPool(options.threads(), decodeThreads());
    try {
      List<Future<RowLoader.Outcome>> futures = new ArrayList<>(rows.size());
      for (KeypointsCsv.Row row : rows) {
        futures.add(pool.submit(() -> RowLoader.load(csv, imageDir, row, options)));
      }

      for (int i = 0; i < futures.size(); i++) {
        RowLoader.Outcome outcome = await(futures.get(i), csv, rows.get(i), samples.size(), total);
        if (outcome.badRow() == null) {
          samples.add(outcome.sample());
          continue;
        }
        if (options.onBadRow() == OnBadRow.FAIL) {
          futures.forEach(future -> future.cancel(true));
          throw failure(outcome.badRow(), samples.size(), total);
        }
        skipped.add(outcome.badRow());
      }
    } finally {
      pool.shutdownNow();
    }

    if (options.onBadRow() == OnBadRow.FAIL && !contents.badRows().isEmpty()) {
      throw failure(contents.badRows().getFirst(), samples.size(), total);
    }

    skipped.sort(Comparator.comparingInt(BadRow::lineNumber));
    LoadReport report = new LoadReport(csv, samples.size(), skipped);
    logSkipped(skipped);
    LOG.info(
        "Loaded {} samples from {}, skipped {} rows, in {} ms",
        samples.size(),
        csv,
        skipped.size(),
        (System.nanoTime() - startNanos) / 1_000_000);
    return new Loaded(samples, report);
  }

  private static RowLoader.Outcome await(
      Future<RowLoader.Outcome> future, Path csv, KeypointsCsv.Row row, int loaded, int total)
      throws IOException {
    String where = csv + " line " + row.lineNumber() + " (" + row.fileName() + ")";
    try {
      return future.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      InterruptedIOException stop =
          new InterruptedIOException(
              "loading was interrupted at "
                  + where
                  + " after "
                  + loaded
                  + " of "
                  + total
                  + " rows; load the dataset again");
      stop.initCause(e);
      throw stop;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Error error) {
        throw error;
      }
      throw new IOException(
          "loading stopped at "
              + where
              + " after "
              + loaded
              + " of "
              + total
              + " rows because of an unexpected error: "
              + e.getCause(),
          e.getCause());
    }
  }

  private static BadRowException failure(BadRow row, int loaded, int total) {
    return new BadRowException(
        row,
        "Loading stopped after "
            + loaded
            + " of "
            + total
            + " rows; fix the row, or skip bad rows (--skip-bad-rows on the command line,"
            + " OnBadRow.SKIP in the API)");
  }

  private static void logSkipped(List<BadRow> skipped) {
    for (int i = 0; i < Math.min(skipped.size(), LOGGED_BAD_ROWS); i++) {
      LOG.warn("Skipped {}", skipped.get(i).message());
    }
    if (skipped.size() > LOGGED_BAD_ROWS) {
      LOG.warn("Skipped {} more rows; see the load report", skipped.size() - LOGGED_BAD_ROWS);
    }
  }

  private static ThreadFactory decodeThreads() {
    AtomicInteger count = new AtomicInteger();
    return task -> {
      Thread thread = new Thread(task, "kiln-decode-" + count.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }
}
