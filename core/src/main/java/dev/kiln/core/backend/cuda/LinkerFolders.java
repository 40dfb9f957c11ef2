package dev.kiln.core.backend.cuda;

import java.io.IOException;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.PatternSyntaxException;

/**
 * The folders where glibc's dynamic linker looks for a library named without a path, read from the
 * environment and {@code ld.so.conf} without loading anything.
 *
 * <p>The order follows {@code ld.so(8)}: {@code LD_LIBRARY_PATH}, then the folders that {@code
 * ld.so.conf} lists (which {@code ldconfig} caches), then the default folders. It leaves out {@code
 * DT_RPATH} and {@code DT_RUNPATH}, which belong to the loading library, so a file found here is
 * the likely one, not a certain one.
 */
final class LinkerFolders {

  /** The default folders of glibc on x86-64, searched after the configured ones. */
  static final List<Path> DEFAULT_FOLDERS =
      List.of(
          Path.of("/lib/x86_64-linux-gnu"),
          Path.of("/usr/lib/x86_64-linux-gnu"),
          Path.of("/lib64"),
          Path.of("/usr/lib64"),
          Path.of("/lib"),
          Path.of("/usr/lib"));

  /** Include lines nested deeper than this are ignored, so that a cycle of includes ends. */
  private static final int MAX_INCLUDE_DEPTH = 8;

  private LinkerFolders() {}

  /**
   * Returns the first file named {@code fileName} in the linker's folders, a dangling symbolic link
   * included, or null where none exists.
   *
   * @param ldLibraryPath the value of {@code LD_LIBRARY_PATH}, or null
   * @param ldSoConf the configuration file, {@code /etc/ld.so.conf} on the real system
   * @param defaultFolders the folders searched last
   */
  static Path find(
      String fileName, String ldLibraryPath, Path ldSoConf, List<Path> defaultFolders) {
    List<Path> folders = new ArrayList<>();
    if (ldLibraryPath != null) {
      for (String entry : ldLibraryPath.split(":")) {
        if (!entry.isBlank()) {
          folders.add(Path.of(entry.strip()));
        }
      }
    }
    folders.addAll(configured(ldSoConf, 0));
    folders.addAll(defaultFolders);
    for (Path folder : folders) {
      Path file = folder.resolve(fileName);
      if (Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
        return file;
      }
    }
    return null;
  }

  /**
   * Returns the folders that a configuration file lists, in order, following its {@code include}
   * lines. An unreadable file lists none, as it does for the linker.
   */
  static List<Path> configured(Path conf, int depth) {
    List<Path> folders = new ArrayList<>();
    List<String> lines;
    try {
      lines = Files.readAllLines(conf);
    } catch (IOException e) {
      return folders;
    }
    for (String raw : lines) {
      int comment = raw.indexOf('#');
      String line = (comment >= 0 ? raw.substring(0, comment) : raw).strip();
      if (line.isEmpty() || line.startsWith("hwcap ")) {
        continue;
      }
      if (line.startsWith("include ")) {
        if (depth < MAX_INCLUDE_DEPTH) {
          for (Path included : expandInclude(conf, line.substring("include ".length()).strip())) {
            folders.addAll(configured(included, depth + 1));
          }
        }
        continue;
      }
      folders.add(Path.of(line));
    }
    return folders;
  }

  /**
   * Returns the files that an include pattern such as {@code /etc/ld.so.conf.d/*.conf} matches,
   * sorted by name. A relative pattern is taken from the including file's folder, and only the last
   * segment may contain wildcards.
   */
  private static List<Path> expandInclude(Path conf, String pattern) {
    Path path = Path.of(pattern);
    if (!path.isAbsolute() && conf.getParent() != null) {
      path = conf.getParent().resolve(path);
    }
    Path folder = path.getParent();
    if (folder == null || path.getFileName() == null) {
      return List.of();
    }
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> stream =
        Files.newDirectoryStream(folder, path.getFileName().toString())) {
      stream.forEach(files::add);
    } catch (IOException | DirectoryIteratorException | PatternSyntaxException e) {
      // A missing folder or an invalid pattern includes nothing, as for the linker.
      return List.of();
    }
    files.sort(null);
    return files;
  }
}
