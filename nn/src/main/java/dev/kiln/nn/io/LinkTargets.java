package dev.kiln.nn.io;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The lookup of the file at the end of a chain of symbolic links, for {@link Safetensors#write}.
 * Renaming a temporary file over a link would replace the link itself. So a write that follows
 * links renames it over the file at the end of the chain instead.
 */
final class LinkTargets {

  /** Maximum number of symbolic links followed, the same as Linux's MAXSYMLINKS. */
  static final int MAX_LINKS = 40;

  private LinkTargets() {}

  /**
   * Returns the file that a write to {@code file} replaces: {@code file} itself where it is not a
   * symbolic link, else the path that its chain of links ends at. That path may not exist yet when
   * the last link dangles.
   *
   * @throws FileSystemException naming {@code file} if the chain has more than {@link #MAX_LINKS}
   *     links, as a loop has
   */
  static Path resolve(Path file) throws IOException {
    Path current = file;
    for (int links = 0; Files.isSymbolicLink(current); links++) {
      if (links == MAX_LINKS) {
        throw new FileSystemException(
            file.toString(),
            current.toString(),
            "too many levels of symbolic links (more than "
                + MAX_LINKS
                + "), so they may form a cycle; point the link at a file");
      }
      // A relative link is relative to the folder that contains the link. The path is not
      // normalized, because ".." after a linked folder means that folder's real parent.
      Path destination = Files.readSymbolicLink(current);
      current = current.toAbsolutePath().getParent().resolve(destination);
    }
    return current;
  }
}
