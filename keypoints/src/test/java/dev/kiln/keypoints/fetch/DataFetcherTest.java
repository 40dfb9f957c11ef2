package dev.kiln.keypoints.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Downloads from a real HTTP server on 127.0.0.1; no test contacts any other host. */
class DataFetcherTest {
  private static final String ADVICE = "run `kiln fetch-data --archive FILE`";

  @TempDir Path folder;

  private HttpServer server;
  private ExecutorService executor;
  private final CountDownLatch release = new CountDownLatch(1);

  @BeforeEach
  void startServer() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
    executor = Executors.newCachedThreadPool();
    server.setExecutor(executor);
    server.start();
  }

  @AfterEach
  void stopServer() {
    release.countDown();
    server.stop(0);
    executor.shutdownNow();
  }

  /** Serves {@code body} with {@code status} at {@code path}. */
  private URI serve(String path, int status, byte[] body) {
    server.createContext(
        path,
        exchange -> {
          exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
          try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
          }
        });
    return url(path);
  }

  private URI url(String path) {
    return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
  }

  private DataFetcher fetcher(URI url) {
    return new DataFetcher()
        .url(url)
        .connectTimeout(Duration.ofSeconds(2))
        .readTimeout(Duration.ofSeconds(1));
  }

  private List<String> folderListing() throws IOException {
    try (Stream<Path> files = Files.list(folder)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void fetchInstallsDataset() throws IOException {
    URI url = serve("/data.zip", 200, TestArchives.zip(TestArchives.dataset("data/")));
    Path data = folder.resolve("data");

    fetcher(url).fetch(data);

    assertTrue(DataFetcher.isDataset(data));
    assertArrayEquals(
        TestArchives.csv("a.jpg", "b.jpg"),
        Files.readAllBytes(data.resolve("training_frames_keypoints.csv")));
    assertArrayEquals(TestArchives.png(), Files.readAllBytes(data.resolve("test/c.png")));
    assertEquals(List.of("data"), folderListing());
  }

  @Test
  void fetchedFolderHasMkdirPermissions() throws IOException {
    assumeTrue(
        FileSystems.getDefault().supportedFileAttributeViews().contains("posix"),
        "the file system has no POSIX permissions to compare");
    URI url = serve("/data.zip", 200, TestArchives.zip(TestArchives.dataset("data/")));
    Path data = folder.resolve("data");

    fetcher(url).fetch(data);

    assertEquals(mkdirPermissions(), permissions(data));
  }

  @Test
  void installedFolderHasMkdirPermissions() throws IOException {
    assumeTrue(
        FileSystems.getDefault().supportedFileAttributeViews().contains("posix"),
        "the file system has no POSIX permissions to compare");
    Path archive = folder.resolve("a.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("")));
    Path data = folder.resolve("data");

    new DataFetcher().install(archive, data);

    assertEquals(mkdirPermissions(), permissions(data));
  }

  /** Returns the permissions that a plain mkdir in the test folder gets under the umask. */
  private String mkdirPermissions() throws IOException {
    Path probe = Files.createDirectory(folder.resolve("probe"));
    try {
      return permissions(probe);
    } finally {
      Files.delete(probe);
    }
  }

  private static String permissions(Path path) throws IOException {
    Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(path);
    return PosixFilePermissions.toString(permissions);
  }

  @Test
  void fetchReportsProgressToTotal() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    URI url = serve("/data.zip", 200, zip);
    AtomicLong lastDone = new AtomicLong();
    AtomicLong lastTotal = new AtomicLong();

    fetcher(url)
        .progress(
            (done, total) -> {
              lastDone.set(done);
              lastTotal.set(total);
            })
        .fetch(folder.resolve("data"));

    assertEquals(zip.length, lastDone.get());
    assertEquals(zip.length, lastTotal.get());
  }

  @Test
  void fetchHttp404KeepsNothing() throws IOException {
    URI url = serve("/other.zip", 200, new byte[] {1});
    URI missing = url("/missing.zip");

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(missing).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("HTTP 404"), error.getMessage());
    assertTrue(error.getMessage().contains(ADVICE), error.getMessage());
    assertTrue(error.getMessage().contains("from " + missing), error.getMessage());
    assertEquals(List.of(), folderListing());
    assertFalse(url.equals(missing));
  }

  @Test
  void fetchTruncatedZipKeepsNothing() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    URI url = serve("/data.zip", 200, Arrays.copyOf(zip, zip.length / 2));

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("is not a valid zip file"), error.getMessage());
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchCorruptEntryKeepsNothing() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    // Flip bytes inside the first entry's compressed data; the central directory stays valid.
    for (int i = 60; i < 90; i++) {
      zip[i] ^= 0x5A;
    }
    URI url = serve("/data.zip", 200, zip);

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("damaged entry"), error.getMessage());
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchZipWithoutCsvRejected() throws IOException {
    Map<String, byte[]> entries = TestArchives.dataset("data/");
    entries.remove("data/test_frames_keypoints.csv");
    URI url = serve("/data.zip", 200, TestArchives.zip(entries));

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(
        error.getMessage().contains("is missing test_frames_keypoints.csv"), error.getMessage());
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchZipSlipEntryRejected() throws IOException {
    Map<String, byte[]> entries = TestArchives.dataset("data/");
    entries.put("data/training/../../evil.txt", new byte[] {66});
    URI url = serve("/data.zip", 200, TestArchives.zip(entries));

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(
        error.getMessage().contains("unsafe entry 'data/training/../../evil.txt'"),
        error.getMessage());
    assertEquals(List.of(), folderListing());
    assertFalse(Files.exists(folder.getParent().resolve("evil.txt")));
  }

  @Test
  void installAbsoluteEntryRejected() throws IOException {
    Map<String, byte[]> entries = TestArchives.dataset("");
    entries.put("/tmp/evil.txt", new byte[] {66});
    Path archive = Files.createTempFile("kiln-absolute-", ".zip");
    try {
      Files.write(archive, TestArchives.zip(entries));

      FetchException error =
          assertThrows(
              FetchException.class,
              () -> new DataFetcher().install(archive, folder.resolve("data")));

      assertTrue(error.getMessage().contains("unsafe entry '/tmp/evil.txt'"), error.getMessage());
      assertEquals(List.of(), folderListing());
    } finally {
      Files.delete(archive);
    }
  }

  @Test
  void fetchSilentServerTimesOut() throws IOException {
    server.createContext(
        "/silent.zip",
        exchange -> {
          try {
            release.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          exchange.close();
        });
    long start = System.nanoTime();

    FetchException error =
        assertThrows(
            FetchException.class, () -> fetcher(url("/silent.zip")).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("timed out"), error.getMessage());
    assertTrue(error.getMessage().contains(ADVICE), error.getMessage());
    assertTrue(System.nanoTime() - start < 10_000_000_000L, "took more than 10 s");
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchStalledBodyTimesOut() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    server.createContext(
        "/stall.zip",
        exchange -> {
          exchange.sendResponseHeaders(200, zip.length);
          OutputStream out = exchange.getResponseBody();
          out.write(zip, 0, zip.length / 2);
          out.flush();
          try {
            release.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          exchange.close();
        });

    FetchException error =
        assertThrows(
            FetchException.class, () -> fetcher(url("/stall.zip")).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("no data arrived for 1.0 s"), error.getMessage());
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchConnectionRefused() throws IOException {
    int port;
    try (ServerSocket closed = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      port = closed.getLocalPort();
    }
    URI url = URI.create("http://127.0.0.1:" + port + "/data.zip");

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(
        error.getMessage().contains("could not connect to 127.0.0.1:" + port), error.getMessage());
    assertTrue(error.getMessage().contains(ADVICE), error.getMessage());
    assertEquals(List.of(), folderListing());
  }

  @Test
  void failedFetchRemovesCreatedFolders() throws IOException {
    Path nested = folder.resolve("new").resolve("deeper").resolve("data");

    assertThrows(FetchException.class, () -> fetcher(url("/missing.zip")).fetch(nested));

    assertFalse(Files.exists(folder.resolve("new")), "the parent folders it created are gone");
    assertTrue(Files.isDirectory(folder), "the folder that existed before is kept");
  }

  @Test
  void fetchExistingDatasetNeedsForce() throws IOException {
    URI url = serve("/data.zip", 200, TestArchives.zip(TestArchives.dataset("data/")));
    Path data = folder.resolve("data");
    fetcher(url).fetch(data);
    Files.writeString(data.resolve("marker.txt"), "old copy");

    FetchException error = assertThrows(FetchException.class, () -> fetcher(url).fetch(data));

    assertTrue(error.getMessage().contains("--force"), error.getMessage());
    assertTrue(Files.exists(data.resolve("marker.txt")));
  }

  @Test
  void fetchForceReplacesDataset() throws IOException {
    URI url = serve("/data.zip", 200, TestArchives.zip(TestArchives.dataset("data/")));
    Path data = folder.resolve("data");
    fetcher(url).fetch(data);
    Files.writeString(data.resolve("marker.txt"), "old copy");

    fetcher(url).force(true).fetch(data);

    assertTrue(DataFetcher.isDataset(data));
    assertFalse(Files.exists(data.resolve("marker.txt")));
    assertEquals(List.of("data"), folderListing());
  }

  @Test
  void forceWithDamagedArchiveKeepsDataset() throws IOException {
    Path good = folder.resolve("good.zip");
    Files.write(good, TestArchives.zip(TestArchives.dataset("")));
    Path data = folder.resolve("data");
    new DataFetcher().install(good, data);
    Files.writeString(data.resolve("marker.txt"), "old copy");
    byte[] csvBefore = Files.readAllBytes(data.resolve("training_frames_keypoints.csv"));
    byte[] zip = TestArchives.zip(TestArchives.dataset(""));
    // Damage the first entry's data, so that the failure comes while unpacking.
    for (int i = 60; i < 90; i++) {
      zip[i] ^= 0x5A;
    }
    Path bad = folder.resolve("bad.zip");
    Files.write(bad, zip);

    FetchException error =
        assertThrows(FetchException.class, () -> new DataFetcher().force(true).install(bad, data));

    assertTrue(error.getMessage().contains("damaged entry"), error.getMessage());
    assertEquals("old copy", Files.readString(data.resolve("marker.txt")));
    assertArrayEquals(csvBefore, Files.readAllBytes(data.resolve("training_frames_keypoints.csv")));
    assertEquals(List.of("bad.zip", "data", "good.zip"), folderListing());
  }

  @Test
  void forceNeverReplacesOtherFolder() throws IOException {
    Path data = folder.resolve("home");
    Files.createDirectories(data);
    Files.writeString(data.resolve("notes.txt"), "keep me");
    Path archive = folder.resolve("data.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("")));

    FetchException error =
        assertThrows(
            FetchException.class, () -> new DataFetcher().force(true).install(archive, data));

    assertTrue(
        error.getMessage().contains("does not contain the keypoint dataset"), error.getMessage());
    assertEquals("keep me", Files.readString(data.resolve("notes.txt")));
  }

  @Test
  void installLocalArchiveWithoutTopFolder() throws IOException {
    Path archive = folder.resolve("train-test-data.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("")));
    Path data = folder.resolve("data");

    new DataFetcher().install(archive, data);

    assertTrue(DataFetcher.isDataset(data));
    assertEquals(List.of("data", "train-test-data.zip"), folderListing());
  }

  @Test
  void installChecksSha256() throws IOException {
    Path archive = folder.resolve("a.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("data/")));
    String wrong = "0".repeat(64);

    FetchException error =
        assertThrows(
            FetchException.class,
            () -> new DataFetcher().expectedSha256(wrong).install(archive, folder.resolve("d")));

    String message = error.getMessage();
    assertTrue(message.contains("Archive " + archive + " has SHA-256 "), message);
    assertTrue(message.contains("has SHA-256 " + DataFetcher.sha256(archive)), message);
    assertTrue(message.contains(wrong + " was expected"), message);
    assertTrue(message.contains("check the --sha256 value"), message);
    assertEquals(List.of("a.zip"), folderListing());
  }

  @Test
  void fetchSha256MismatchNamesUrl() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    URI url = serve("/data.zip", 200, zip);
    Path copy = folder.resolve("copy.zip");
    Files.write(copy, zip);
    String actual = DataFetcher.sha256(copy);
    Files.delete(copy);
    String wrong = "0".repeat(64);

    FetchException error =
        assertThrows(
            FetchException.class,
            () -> fetcher(url).expectedSha256(wrong).fetch(folder.resolve("data")));

    String message = error.getMessage();
    assertTrue(message.contains(url.toString()), message);
    assertTrue(message.contains("has SHA-256 " + actual), message);
    assertTrue(message.contains(wrong + " was expected"), message);
    assertTrue(message.contains("check the --sha256 value"), message);
    assertFalse(message.contains(".download-"), message);
    assertEquals(List.of(), folderListing());
  }

  @Test
  void fetchTruncatedZipNamesUrl() throws IOException {
    byte[] zip = TestArchives.zip(TestArchives.dataset("data/"));
    URI url = serve("/data.zip", 200, Arrays.copyOf(zip, zip.length / 2));

    FetchException error =
        assertThrows(FetchException.class, () -> fetcher(url).fetch(folder.resolve("data")));

    assertTrue(error.getMessage().contains("downloaded from " + url), error.getMessage());
    assertFalse(error.getMessage().contains(".download-"), error.getMessage());
  }

  @Test
  void installMatchingSha256Succeeds() throws IOException {
    Path archive = folder.resolve("a.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("data/")));

    new DataFetcher()
        .expectedSha256(DataFetcher.sha256(archive).toUpperCase(java.util.Locale.ROOT))
        .install(archive, folder.resolve("d"));

    assertTrue(DataFetcher.isDataset(folder.resolve("d")));
  }

  @Test
  void installMissingArchiveMessage() {
    FetchException error =
        assertThrows(
            FetchException.class,
            () -> new DataFetcher().install(folder.resolve("nope.zip"), folder.resolve("d")));

    assertTrue(error.getMessage().contains("nope.zip not found"), error.getMessage());
  }
}
