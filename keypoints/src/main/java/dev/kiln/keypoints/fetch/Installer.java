package dev.kiln.keypoints.fetch;

import dev.kiln.keypoints.io.Folders;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks the dataset archive and unpacks it into a temporary folder beside the data folder, then
 * swaps that folder into place with atomic renames.
 */
final class Installer {
  private static final Logger LOG = LoggerFactory.getLogger(Installer.class);

  /** Top folder under which the archive may keep the dataset. */
  private static final String TOP_FOLDER = "data/";

  /** Folder of macOS resource forks that archivers on macOS add; it is skipped. */
  private static final String MAC_METADATA = "__MACOSX/";

  /** Advice that ends the messages about an invalid archive. */
  private static final String REMEDY =
      "download it again, or point --data at a copy of the dataset.";

  /** Maximum number of random names to try for the unpack folder. */
  private static final int STAGING_ATTEMPTS = 100;

  private final Path archive;

  /**
   * Subject of the error messages, such as "Archive FILE". For a download it names the URL, because
   * the temporary file is deleted before the user reads the message.
   */
  private final String archiveName;

  private final Path dataFolder;
  private final boolean force;

  Installer(Path archive, String archiveName, Path dataFolder, boolean force) {
    this.archive = archive;
    this.archiveName = archiveName;
    this.dataFolder = dataFolder;
    this.force = force;
  }

  /**
   * Rejects a data folder that must not be replaced: a file, a complete dataset without {@code
   * force}, a partial one without {@code force}, or any other non-empty folder.
   */
  static void checkDestination(Path dataFolder, boolean force) throws IOException {
    if (!Files.exists(dataFolder, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (!Files.isDirectory(dataFolder, LinkOption.NOFOLLOW_LINKS)) {
      throw new FetchException(
          dataFolder + " exists and is not a folder: choose another path for --data.");
    }
    if (isEmpty(dataFolder)) {
      return;
    }
    if (DataFetcher.isDataset(dataFolder)) {
      if (!force) {
        throw new FetchException(
            dataFolder
                + " already contains the dataset: use it as it is, or add --force to replace it.");
      }
      return;
    }
    if (containsAnyDatasetName(dataFolder)) {
      if (!force) {
        throw new FetchException(
            dataFolder
                + " contains an incomplete dataset: add --force to replace it with a new copy.");
      }
      return;
    }
    throw new FetchException(
        dataFolder
            + " is not empty and does not contain the keypoint dataset, so it is not replaced"
            + " even with --force: choose a new or empty folder for --data.");
  }

  /** Checks the archive, unpacks it and moves it into place, or leaves everything as it was. */
  void run() throws IOException {
    Path parent = dataFolder.toAbsolutePath().getParent();
    Files.createDirectories(parent);

    try (ZipFile zip = open()) {
      String prefix = checkEntries(zip);
      Path unpacked = createStagingFolder(parent, "." + dataFolder.getFileName() + ".unpack-");
      try {
        int files = unpack(zip, prefix, unpacked);
        if (!DataFetcher.isDataset(unpacked)) {
          throw new FetchException(
              archiveName + " did not unpack into a complete dataset; " + REMEDY);
        }
        swapInto(unpacked);
        // The archive's name, not its path, which for a download is a temporary file.
        LOG.info("{} unpacked into {}: {} files", archiveName, dataFolder, files);
      } finally {
        Folders.deleteRecursively(unpacked);
      }
    }
  }

  /**
   * Creates an empty folder named {@code prefix} plus a random number in {@code parent}, with the
   * permissions of a plain mkdir under the process umask. The dataset keeps them once the folder is
   * renamed into place. {@link Files#createTempDirectory} is not used because on POSIX file systems
   * it makes a folder that only its owner may read.
   */
  private static Path createStagingFolder(Path parent, String prefix) throws IOException {
    FileAlreadyExistsException clash = null;
    for (int attempt = 0; attempt < STAGING_ATTEMPTS; attempt++) {
      String suffix = Long.toUnsignedString(ThreadLocalRandom.current().nextLong());
      try {
        return Files.createDirectory(parent.resolve(prefix + suffix));
      } catch (FileAlreadyExistsException e) {
        clash = e;
      }
    }
    throw new IOException(
        "Failed to create a temporary folder in "
            + parent
            + " after "
            + STAGING_ATTEMPTS
            + " names that were all taken; remove the folders named "
            + prefix
            + "* there and try again.",
        clash);
  }

  private ZipFile open() throws IOException {
    try {
      return new ZipFile(archive.toFile());
    } catch (ZipException e) {
      throw new FetchException(
          archiveName
              + " is not a valid zip file ("
              + e.getMessage()
              + "), probably an incomplete or damaged download: "
              + REMEDY,
          e);
    }
  }

  /**
   * Rejects unsafe entry names and checks that the dataset files are present.
   *
   * @return the folder prefix of the dataset inside the archive, empty or {@code "data/"}
   */
  private String checkEntries(ZipFile zip) throws FetchException {
    List<String> names = new ArrayList<>();
    for (Enumeration<? extends ZipEntry> entries = zip.entries(); entries.hasMoreElements(); ) {
      String name = entries.nextElement().getName();
      checkEntryName(name);
      names.add(name);
    }

    String prefix = names.contains(TOP_FOLDER + DataFetcher.TRAINING_CSV) ? TOP_FOLDER : "";
    List<String> missing = new ArrayList<>();
    for (String file : List.of(DataFetcher.TRAINING_CSV, DataFetcher.TEST_CSV)) {
      if (!names.contains(prefix + file)) {
        missing.add(file);
      }
    }
    for (String folder : List.of(DataFetcher.TRAINING_FOLDER, DataFetcher.TEST_FOLDER)) {
      String start = prefix + folder + "/";
      if (names.stream().noneMatch(name -> name.startsWith(start))) {
        missing.add(folder + "/");
      }
    }
    if (!missing.isEmpty()) {
      throw new FetchException(
          archiveName
              + " is missing "
              + String.join(", ", missing)
              + ", so it is not the facial keypoints dataset: "
              + REMEDY);
    }
    return prefix;
  }

  /** Rejects absolute names and names with a {@code ..} segment (zip-slip). */
  private void checkEntryName(String name) throws FetchException {
    boolean absolute =
        name.startsWith("/") || name.startsWith("\\") || name.matches("^[A-Za-z]:.*");
    boolean parentSegment = false;
    for (String segment : name.split("[/\\\\]")) {
      if (segment.equals("..")) {
        parentSegment = true;
      }
    }
    if (absolute || parentSegment || name.indexOf('\0') >= 0) {
      throw new FetchException(
          archiveName
              + " contains the unsafe entry '"
              + name
              + "', which would be written outside the data folder; nothing was unpacked. "
              + "Use an archive from a trusted source.");
    }
  }

  /** Unpacks the entries under {@code prefix} into {@code target}; returns the number of files. */
  private int unpack(ZipFile zip, String prefix, Path target) throws IOException {
    Path root = target.toAbsolutePath().normalize();
    int files = 0;
    for (Enumeration<? extends ZipEntry> entries = zip.entries(); entries.hasMoreElements(); ) {
      ZipEntry entry = entries.nextElement();
      String name = entry.getName();
      if (!name.startsWith(prefix) || name.startsWith(MAC_METADATA) || name.equals(prefix)) {
        continue;
      }

      // checkEntryName already rejected '..' and absolute names; this catches anything else
      // that would still resolve outside the unpack folder.
      Path path = root.resolve(name.substring(prefix.length())).normalize();
      if (!path.startsWith(root) || path.equals(root)) {
        throw new FetchException(
            archiveName + " contains the unsafe entry '" + name + "'; " + REMEDY);
      }

      if (entry.isDirectory()) {
        Files.createDirectories(path);
        continue;
      }
      Files.createDirectories(path.getParent());
      copyChecked(zip, entry, path);
      files++;
    }
    return files;
  }

  /** Copies one entry to {@code path}, checking its CRC-32 against the archive's record. */
  private void copyChecked(ZipFile zip, ZipEntry entry, Path path) throws IOException {
    CRC32 crc = new CRC32();
    try (InputStream in = zip.getInputStream(entry);
        OutputStream out = Files.newOutputStream(path)) {
      byte[] buffer = new byte[64 * 1024];
      for (int read = in.read(buffer); read >= 0; read = in.read(buffer)) {
        crc.update(buffer, 0, read);
        out.write(buffer, 0, read);
      }
    } catch (ZipException | java.io.EOFException e) {
      throw new FetchException(
          archiveName + " has a damaged entry " + entry.getName() + ": " + REMEDY, e);
    }
    if (entry.getCrc() != -1 && crc.getValue() != entry.getCrc()) {
      throw new FetchException(
          archiveName
              + " has a damaged entry "
              + entry.getName()
              + " (CRC-32 mismatch): "
              + REMEDY);
    }
  }

  /**
   * Moves {@code unpacked} to the data folder. An existing data folder is first renamed aside and
   * deleted only after the new one is in place, so a failure leaves the old one where it was.
   */
  private void swapInto(Path unpacked) throws IOException {
    checkDestination(dataFolder, force);
    if (!Files.exists(dataFolder, LinkOption.NOFOLLOW_LINKS)) {
      DataFetcher.rename(unpacked, dataFolder);
      return;
    }

    Path parent = dataFolder.toAbsolutePath().getParent();
    Path old = Files.createTempDirectory(parent, "." + dataFolder.getFileName() + ".old-");
    Files.delete(old);
    DataFetcher.rename(dataFolder, old);
    try {
      DataFetcher.rename(unpacked, dataFolder);
    } catch (IOException e) {
      DataFetcher.rename(old, dataFolder);
      throw e;
    }
    Folders.deleteRecursively(old);
  }

  private static boolean isEmpty(Path folder) throws IOException {
    try (DirectoryStream<Path> children = Files.newDirectoryStream(folder)) {
      return !children.iterator().hasNext();
    }
  }

  private static boolean containsAnyDatasetName(Path folder) {
    for (String name :
        List.of(
            DataFetcher.TRAINING_CSV,
            DataFetcher.TEST_CSV,
            DataFetcher.TRAINING_FOLDER,
            DataFetcher.TEST_FOLDER)) {
      if (Files.exists(folder.resolve(name), LinkOption.NOFOLLOW_LINKS)) {
        return true;
      }
    }
    return false;
  }
}
