package dev.kiln.keypoints.fetch;

import dev.kiln.keypoints.data.DataLocation;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The {@code kiln fetch-data} command: downloads the facial keypoints dataset, or installs a local
 * copy of its archive, into the data folder.
 */
@Command(
    name = "fetch-data",
    mixinStandardHelpOptions = true,
    description = {
      "Download the Udacity facial keypoints archive and unpack it into the data folder, or"
          + " unpack a local copy given with --archive.",
      "Exit code 0 on success, 1 on failure, 2 on an invalid option."
    })
public final class FetchDataCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Option(
      names = "--data",
      description =
          "Folder to create with the dataset, the one that train reads by default"
              + " (default: $KILN_DATA/facial-keypoints when KILN_DATA is set, else"
              + " data/facial-keypoints).")
  Path data;

  @Option(
      names = "--archive",
      paramLabel = "FILE",
      description = "Unpack this local zip file in place of downloading.")
  Path archive;

  @Option(names = "--url", description = "URL of the archive (default: the public Udacity copy).")
  URI url = DataFetcher.DEFAULT_URL;

  @Option(
      names = "--sha256",
      paramLabel = "HEX",
      description = "Expected SHA-256 of the archive, as 64 hex digits; checked when given.")
  String sha256;

  @Option(
      names = "--force",
      description = "Replace the data folder when it already contains the dataset.")
  boolean force;

  @Option(
      names = "--connect-timeout",
      defaultValue = "30",
      description = "Seconds to wait for the connection (default: ${DEFAULT-VALUE}).")
  int connectTimeoutSeconds;

  @Option(
      names = "--read-timeout",
      defaultValue = "60",
      description =
          "Seconds to wait for the response, and for more data during the transfer"
              + " (default: ${DEFAULT-VALUE}).")
  int readTimeoutSeconds;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (connectTimeoutSeconds < 1 || readTimeoutSeconds < 1) {
      throw new picocli.CommandLine.ParameterException(
          spec.commandLine(), "--connect-timeout and --read-timeout must be at least 1 second");
    }

    DataFetcher fetcher =
        new DataFetcher()
            .url(url)
            .connectTimeout(Duration.ofSeconds(connectTimeoutSeconds))
            .readTimeout(Duration.ofSeconds(readTimeoutSeconds))
            .force(force)
            .progress(new ProgressPrinter(out));
    try {
      fetcher.expectedSha256(sha256);
    } catch (IllegalArgumentException e) {
      throw new picocli.CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }

    try {
      if (archive != null) {
        fetcher.install(archive, dataFolder());
      } else {
        out.println("Downloading " + url);
        out.flush();
        fetcher.fetch(dataFolder());
      }
    } catch (IOException e) {
      err.println("fetch-data failed: " + e.getMessage());
      err.flush();
      return 1;
    }
    out.println("The dataset is in " + dataFolder().toAbsolutePath());
    out.flush();
    return 0;
  }

  /**
   * Prints a line at every further 10% of the download, or every 10 MB when the size is unknown.
   */
  private static final class ProgressPrinter implements DataFetcher.Progress {
    private static final long STEP_BYTES = 10L << 20;
    private final PrintWriter out;
    private long nextReport;

    ProgressPrinter(PrintWriter out) {
      this.out = out;
    }

    @Override
    public synchronized void update(long done, long total) {
      if (done < nextReport && done != total) {
        return;
      }
      if (total > 0) {
        out.printf(
            Locale.ROOT, "%5.1f%%  %.1f of %.1f MB%n", 100.0 * done / total, mb(done), mb(total));
        nextReport = done + Math.max(1, total / 10);
      } else {
        out.printf(Locale.ROOT, "%.1f MB%n", mb(done));
        nextReport = done + STEP_BYTES;
      }
      out.flush();
    }

    private static double mb(long bytes) {
      return bytes / 1e6;
    }
  }

  private Path dataFolder() {
    return data != null ? data : DataLocation.defaultFolder();
  }
}
