package dev.kiln.keypoints.fetch;

import dev.kiln.keypoints.io.Folders;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Downloads the Udacity facial keypoints archive and installs it as a data folder that contains
 * {@code training_frames_keypoints.csv}, {@code test_frames_keypoints.csv} and the image folders
 * {@code training/} and {@code test/}.
 *
 * <p>Every step works beside the destination and finishes with an atomic rename: the download goes
 * to a temporary file, the archive is checked and unpacked into a temporary folder, and only a
 * complete dataset replaces the data folder. On failure, the temporary files are deleted and the
 * data folder is left as it was. An existing dataset is replaced only with {@link #force(boolean)},
 * and a non-empty folder that does not look like a dataset is never replaced.
 *
 * <p>Configure it with the chained setters, then call {@link #fetch} or {@link #install}.
 */
public final class DataFetcher {
  /** Public location of the archive. */
  public static final URI DEFAULT_URL =
      URI.create(
          "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/"
              + "5aea1b91_train-test-data/train-test-data.zip");

  /** Keypoint table of the training images. */
  public static final String TRAINING_CSV = "training_frames_keypoints.csv";

  /** Keypoint table of the test images. */
  public static final String TEST_CSV = "test_frames_keypoints.csv";

  /** Folder of the training images. */
  public static final String TRAINING_FOLDER = "training";

  /** Folder of the test images. */
  public static final String TEST_FOLDER = "test";

  private static final Logger LOG = LoggerFactory.getLogger(DataFetcher.class);

  /** Receives download progress. */
  @FunctionalInterface
  public interface Progress {
    /**
     * Reports that {@code done} bytes have arrived out of {@code total}, or out of an unknown total
     * when {@code total} is -1. Called on a thread of the HTTP client, not the caller's.
     */
    void update(long done, long total);
  }

  private URI url = DEFAULT_URL;
  private Duration connectTimeout = Duration.ofSeconds(30);
  private Duration readTimeout = Duration.ofSeconds(60);
  private String expectedSha256;
  private boolean force;
  private Progress progress = (done, total) -> {};

  /** Sets the URL of the archive; the default is {@link #DEFAULT_URL}. */
  public DataFetcher url(URI url) {
    this.url = Objects.requireNonNull(url, "url");
    return this;
  }

  /** Sets how long to wait for the TCP and TLS connection; the default is 30 s. */
  public DataFetcher connectTimeout(Duration timeout) {
    this.connectTimeout = positive(timeout, "connect timeout");
    return this;
  }

  /**
   * Sets how long to wait for the response headers, and for each piece of the body after the
   * previous one; the default is 60 s.
   */
  public DataFetcher readTimeout(Duration timeout) {
    this.readTimeout = positive(timeout, "read timeout");
    return this;
  }

  /** Sets the SHA-256 the archive must have, as 64 hex digits, or null to skip the check. */
  public DataFetcher expectedSha256(String sha256) {
    if (sha256 != null && !sha256.matches("(?i)[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "expected SHA-256 must be 64 hex digits, got '" + sha256 + "'");
    }
    this.expectedSha256 = sha256 == null ? null : sha256.toLowerCase(Locale.ROOT);
    return this;
  }

  /** Allows replacing a data folder that already contains a dataset. */
  public DataFetcher force(boolean force) {
    this.force = force;
    return this;
  }

  /** Sets the receiver of download progress. */
  public DataFetcher progress(Progress progress) {
    this.progress = Objects.requireNonNull(progress, "progress");
    return this;
  }

  /**
   * Downloads the archive and installs it into {@code dataFolder}.
   *
   * @return {@code dataFolder}
   * @throws FetchException if the data folder may not be replaced, the download fails, or the
   *     archive is invalid; the message states what to do next
   * @throws IOException if a local file operation fails
   */
  public Path fetch(Path dataFolder) throws IOException {
    Installer.checkDestination(dataFolder, force);

    Path parent = dataFolder.toAbsolutePath().getParent();
    List<Path> created = Folders.missingFolders(parent);
    Files.createDirectories(parent);
    boolean installed = false;
    Path archive =
        Files.createTempFile(parent, "." + dataFolder.getFileName() + ".download-", ".zip");
    try {
      LOG.info("Downloading {} to {}", url, archive);
      new Download(url, connectTimeout, readTimeout, progress).saveTo(archive);
      LOG.info("Downloaded {} bytes from {}", Files.size(archive), url);
      install(archive, "The archive downloaded from " + url, dataFolder);
      installed = true;
      return dataFolder;
    } finally {
      Files.deleteIfExists(archive);
      if (!installed) {
        Folders.deleteEmptyFolders(created);
      }
    }
  }

  /**
   * Checks a local copy of the archive and installs it into {@code dataFolder}; {@code archive} is
   * left in place.
   *
   * @return {@code dataFolder}
   * @throws FetchException if the data folder may not be replaced or the archive is invalid
   * @throws IOException if a local file operation fails
   */
  public Path install(Path archive, Path dataFolder) throws IOException {
    Installer.checkDestination(dataFolder, force);
    if (!Files.isRegularFile(archive)) {
      throw new FetchException(
          "Archive " + archive + " not found: pass the path of the downloaded zip file.");
    }
    install(archive, "Archive " + archive, dataFolder);
    return dataFolder;
  }

  /**
   * Checks the SHA-256 of {@code archive} and installs it. The error messages start with {@code
   * archiveName}, such as "Archive FILE".
   */
  private void install(Path archive, String archiveName, Path dataFolder) throws IOException {
    if (expectedSha256 != null) {
      String actual = sha256(archive);
      if (!actual.equals(expectedSha256)) {
        throw new FetchException(
            archiveName
                + " has SHA-256 "
                + actual
                + " but "
                + expectedSha256
                + " was expected: check the --sha256 value, and if it is right, download the"
                + " archive again, because this copy is damaged or is another file.");
      }
    }
    new Installer(archive, archiveName, dataFolder, force).run();
  }

  /**
   * Returns whether {@code folder} contains the two keypoint tables and the two image folders. It
   * does not check their contents.
   */
  public static boolean isDataset(Path folder) {
    return Files.isRegularFile(folder.resolve(TRAINING_CSV))
        && Files.isRegularFile(folder.resolve(TEST_CSV))
        && Files.isDirectory(folder.resolve(TRAINING_FOLDER))
        && Files.isDirectory(folder.resolve(TEST_FOLDER));
  }

  /** Returns the SHA-256 of {@code file} as 64 lower-case hex digits. */
  public static String sha256(Path file) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime must provide SHA-256", e);
    }
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
      in.transferTo(OutputStream.nullOutputStream());
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  /** Moves {@code source} to {@code target} with one atomic rename. */
  static void rename(Path source, Path target) throws IOException {
    Files.move(source, target, StandardCopyOption.ATOMIC_MOVE);
  }

  private static Duration positive(Duration timeout, String setting) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException(setting + " must be positive, got " + timeout);
    }
    return timeout;
  }
}
