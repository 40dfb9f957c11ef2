package dev.kiln.keypoints.train;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * A one-line progress display for an epoch: batches done, images per second, the running loss and
 * the time left. On a terminal it redraws one line; elsewhere (a log file, CI) it prints a line at
 * each tenth of the epoch.
 */
public final class ProgressBar {
  private static final int WIDTH = 24;

  private final PrintWriter out;
  private final boolean interactive;
  private int lastTenth = -1;

  public ProgressBar(PrintWriter out, boolean interactive) {
    this.out = out;
    this.interactive = interactive;
  }

  /** Shows the state after {@code done} of {@code total} batches. */
  public void update(
      String label, int done, int total, double imagesPerSecond, double loss, double secondsLeft) {
    int filled = total == 0 ? WIDTH : (int) ((long) WIDTH * done / total);
    String line =
        String.format(
            Locale.ROOT,
            "%s [%s%s] %d/%d  %s  loss %.5f  %s left",
            label,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            done,
            total,
            rate(imagesPerSecond),
            loss,
            formatDuration(secondsLeft));
    if (interactive) {
      out.print("\r" + line + "\u001b[K");
      out.flush();
      return;
    }
    int tenth = total == 0 ? 10 : 10 * done / total;
    if (tenth != lastTenth) {
      lastTenth = tenth;
      out.println(line);
      out.flush();
    }
  }

  /** Ends the progress line, so that the next output starts on a new line. */
  public void finish() {
    if (interactive) {
      out.println();
    }
    lastTenth = -1;
    out.flush();
  }

  /** Formats seconds as {@code m:ss} or {@code h:mm:ss}. */
  static String formatDuration(double seconds) {
    if (!Double.isFinite(seconds) || seconds < 0) {
      return "?";
    }
    long total = Math.round(seconds);
    long hours = total / 3600;
    long minutes = (total % 3600) / 60;
    long secs = total % 60;
    return hours > 0
        ? String.format(Locale.ROOT, "%d:%02d:%02d", hours, minutes, secs)
        : String.format(Locale.ROOT, "%d:%02d", minutes, secs);
  }

  /**
   * Formats a training speed as images per second, or as seconds per image below one image per
   * second, where "0.0 img/s" would look like a hang.
   */
  static String rate(double imagesPerSecond) {
    if (imagesPerSecond > 0 && imagesPerSecond < 1) {
      return String.format(Locale.ROOT, "%.1f s/img", 1 / imagesPerSecond);
    }
    return String.format(Locale.ROOT, "%.1f img/s", imagesPerSecond);
  }
}
