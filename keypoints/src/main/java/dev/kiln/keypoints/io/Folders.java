package dev.kiln.keypoints.io;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Folder operations that the dataset installer, the doctor and the trainer share. */
public final class Folders {
  private static final Logger LOG = LoggerFactory.getLogger(Folders.class);

  private Folders() {}

  /** Deletes {@code path} and, if it is a folder, everything in it; does not follow links. */
  public static void deleteRecursively(Path path) throws IOException {
    if (Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
      try (DirectoryStream<Path> children = Files.newDirectoryStream(path)) {
        for (Path child : children) {
          deleteRecursively(child);
        }
      }
    }
    Files.deleteIfExists(path);
  }

  /** Returns the folders from {@code folder} upwards that do not exist yet, deepest first. */
  public static List<Path> missingFolders(Path folder) {
    List<Path> missing = new ArrayList<>();
    for (Path p = folder; p != null && !Files.exists(p); p = p.getParent()) {
      missing.add(p);
    }
    return missing;
  }

  /**
   * Deletes the folders that a failed command created, listed deepest first, so that a failure
   * leaves the file system as it was. It stops at the first folder that it cannot delete, such as
   * one that something else has written into meanwhile, and keeps that folder and its parents.
   */
  public static void deleteEmptyFolders(List<Path> folders) {
    for (Path folder : folders) {
      try {
        Files.deleteIfExists(folder);
      } catch (IOException e) {
        LOG.debug("Kept folder {}: {}", folder, e.toString());
        return;
      }
    }
  }
}
