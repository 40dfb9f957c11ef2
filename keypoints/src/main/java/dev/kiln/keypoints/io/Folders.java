package dev.kiln.keypoints.io;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/** Folder operations that the dataset installer and the trainer share. */
public final class Folders {

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
}
