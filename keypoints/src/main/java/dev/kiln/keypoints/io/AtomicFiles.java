package dev.kiln.keypoints.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Writes files so that readers see either the old file or the whole new one: the content goes to a
 * temporary file in the same folder, which is then renamed over the target. A failure leaves the
 * old file in place and removes the temporary one. {@link #writeAll} writes a set of files, all
 * into temporary files first, so that a failure while writing leaves every file of the set as it
 * was.
 *
 * <p>A target that is a symbolic link is replaced by the new file, as a rename replaces any folder
 * entry, and the file that the link led to is left as it was. So a run folder whose files link into
 * another run, or an output file that another process turned into a link, never makes kiln write
 * outside the folder it was given.
 */
public final class AtomicFiles {
  /**
   * The maximum length of a file name, in UTF-8 bytes, on common Linux file systems such as ext4.
   */
  public static final int MAX_NAME_BYTES = 255;

  /**
   * Maximum length in bytes of the name that the temporary file's prefix takes from the target's
   * name. The temporary name adds a dot before and after it, up to 20 digits from createTempFile
   * and ".tmp", which is 26 bytes.
   */
  static final int MAX_TEMPORARY_STEM_BYTES = MAX_NAME_BYTES - 26;

  private AtomicFiles() {}

  /** Content written to the temporary file. */
  @FunctionalInterface
  public interface Content {
    void writeTo(Path temporary) throws IOException;
  }

  /** A target file of {@link #writeAll} and the content that it gets. */
  public record Entry(Path file, Content content) {
    public Entry {
      Objects.requireNonNull(file, "file");
      Objects.requireNonNull(content, "content");
    }
  }

  /**
   * Writes {@code content} to {@code file} atomically, creating missing parent folders. The file
   * gets the permissions that {@link Files#write} would give it. Where {@code file} is a symbolic
   * link, the link is replaced and the file it led to is left unchanged.
   *
   * @throws FileSystemException naming {@code file}, not the temporary file, where the temporary
   *     file cannot be created, written or renamed
   */
  public static void write(Path file, Content content) throws IOException {
    writeAll(List.of(new Entry(file, content)));
  }

  /**
   * Writes a set of files in two phases, so that a failure while writing any content leaves every
   * target as it was. First each entry's content goes to a temporary file in its target's folder,
   * in list order. If one of these steps fails, every temporary file is removed and the error is
   * rethrown. Then each temporary file is renamed over its target, in list order. Each target gets
   * the permissions and the handling of symbolic links that {@link #write} gives it.
   *
   * <p>A rename itself can still fail, for example where the folder was removed. Then the targets
   * renamed before it have their new content, the rest keep their old content, and the temporary
   * files not yet renamed are removed. Missing parent folders are created in the first phase and
   * stay after a failure. Where two entries name the same file, the later entry's content is kept.
   * Until the renames, the new files take disk space next to the old ones.
   *
   * @throws FileSystemException naming the target, not its temporary file, where a temporary file
   *     cannot be created, written or renamed
   */
  public static void writeAll(List<Entry> entries) throws IOException {
    List<Path> temporaries = new ArrayList<>(entries.size());
    int renamed = 0;
    try {
      for (Entry entry : entries) {
        stage(entry, temporaries);
      }
      for (; renamed < entries.size(); renamed++) {
        rename(temporaries.get(renamed), entries.get(renamed).file());
      }
    } catch (Throwable error) {
      // The temporary files from index renamed on still exist, and the renamed ones are gone.
      deleteTemporaries(temporaries.subList(renamed, temporaries.size()), error);
      throw error;
    }
  }

  /**
   * Writes {@code entry}'s content to a new temporary file next to its target and adds that file to
   * {@code temporaries} as soon as it exists, so that the caller removes it after a failure.
   */
  private static void stage(Entry entry, List<Path> temporaries) throws IOException {
    Path file = entry.file();
    Path folder = file.toAbsolutePath().getParent();
    Files.createDirectories(folder);
    boolean posix = folder.getFileSystem().supportedFileAttributeViews().contains("posix");
    Set<PosixFilePermission> existing = posix ? permissionsIfExists(file) : null;
    Path temporary = createTemporary(file, folder, posix);
    temporaries.add(temporary);
    writeContent(entry.content(), temporary, file);
    // Set after writing, because some writers (ImageIO among them) delete and recreate the file.
    if (existing != null) {
      try {
        Files.setPosixFilePermissions(temporary, existing);
      } catch (FileSystemException e) {
        throw namingTarget(
            e,
            file,
            "failed to give the temporary file the target's permissions",
            "the temporary file was removed");
      }
    }
  }

  private static void rename(Path temporary, Path file) throws IOException {
    try {
      Files.move(
          temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (FileSystemException e) {
      throw namingTarget(
          e,
          file,
          "failed to rename the temporary file over it",
          "the temporary file or its folder was removed");
    }
  }

  /**
   * Deletes {@code temporaries}, adding any failure to delete one to {@code error} as a suppressed
   * exception, so that the error that stopped the write is the one reported.
   */
  private static void deleteTemporaries(List<Path> temporaries, Throwable error) {
    for (Path temporary : temporaries) {
      try {
        Files.deleteIfExists(temporary);
      } catch (IOException e) {
        error.addSuppressed(e);
      }
    }
  }

  /**
   * Writes {@code content} to {@code temporary}. Stream and channel writes report an operating
   * system error, such as "No space left on device", without a file name, so every failure is
   * rethrown naming {@code file}, except one that names another file (the source of a copy).
   */
  private static void writeContent(Content content, Path temporary, Path file) throws IOException {
    try {
      content.writeTo(temporary);
    } catch (FileSystemException e) {
      if (!temporary.toString().equals(e.getFile())) {
        throw e;
      }
      throw namingTarget(e, file, "failed to write", "the temporary file was removed");
    } catch (IOException e) {
      // Some writers wrap the operating system's reason: ImageIO reports "I/O error writing PNG
      // file!" with "No space left on device" as its cause.
      String reason = e.getMessage();
      if (e.getCause() != null && e.getCause().getMessage() != null) {
        reason += " (" + e.getCause().getMessage() + ")";
      }
      FileSystemException named =
          new FileSystemException(file.toString(), null, "failed to write: " + reason);
      named.initCause(e);
      throw named;
    }
  }

  /** Writes {@code text} as UTF-8 to {@code file} atomically. */
  public static void writeString(Path file, CharSequence text) throws IOException {
    write(file, temporary -> Files.writeString(temporary, text, StandardCharsets.UTF_8));
  }

  /** Copies {@code source} to {@code file} atomically. */
  public static void copy(Path source, Path file) throws IOException {
    write(file, temporary -> Files.copy(source, temporary, StandardCopyOption.REPLACE_EXISTING));
  }

  /**
   * Creates the temporary file for {@code file} in {@code folder}. Files.createTempFile gives mode
   * 0600 by default, but Files.write creates a new file with rw-rw-rw- less the umask and keeps an
   * existing file's permissions. So the temporary file requests rw-rw-rw-, which the operating
   * system reduces by the umask, and {@link #stage} copies an existing file's permissions onto it.
   */
  private static Path createTemporary(Path file, Path folder, boolean posix) throws IOException {
    FileAttribute<?>[] attributes =
        posix
            ? new FileAttribute<?>[] {
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-rw-rw-"))
            }
            : new FileAttribute<?>[0];
    try {
      String stem = truncateUtf8(file.getFileName().toString(), MAX_TEMPORARY_STEM_BYTES);
      return Files.createTempFile(folder, "." + stem + ".", ".tmp", attributes);
    } catch (FileSystemException e) {
      throw namingTarget(
          e, file, "failed to create a temporary file in " + folder, "folder not found");
    }
  }

  /**
   * Returns the longest start of {@code name} whose UTF-8 encoding takes at most {@code maxBytes}
   * bytes, without splitting a character.
   */
  static String truncateUtf8(String name, int maxBytes) {
    int bytes = 0;
    int end = 0;
    while (end < name.length()) {
      int codePoint = name.codePointAt(end);
      int size = utf8Length(codePoint);
      if (bytes + size > maxBytes) {
        break;
      }
      bytes += size;
      end += Character.charCount(codePoint);
    }
    return name.substring(0, end);
  }

  private static int utf8Length(int codePoint) {
    if (codePoint < 0x80) {
      return 1;
    }
    if (codePoint < 0x800) {
      return 2;
    }
    if (codePoint < 0x10000) {
      return 3;
    }
    return 4;
  }

  /**
   * Returns the permissions of {@code file}, or null if it does not exist or is a symbolic link.
   */
  private static Set<PosixFilePermission> permissionsIfExists(Path file) throws IOException {
    // A symbolic link is replaced, not written through, so the file it leads to lends no
    // permissions. Reading them would also fail on a dangling link or a loop.
    if (Files.isSymbolicLink(file)) {
      return null;
    }
    try {
      return Files.getPosixFilePermissions(file);
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  /**
   * Returns an exception that names {@code file} in place of the temporary file, whose name means
   * nothing to the user, and keeps {@code error} as its cause. A denied permission stays an {@link
   * AccessDeniedException}. {@code notFound} describes a {@link NoSuchFileException}, which has no
   * reason of its own.
   */
  static FileSystemException namingTarget(
      FileSystemException error, Path file, String action, String notFound) {
    FileSystemException named;
    if (error instanceof AccessDeniedException) {
      named = new AccessDeniedException(file.toString(), null, "permission denied: " + action);
    } else {
      String problem = error.getReason() != null ? error.getReason() : problemOf(error, notFound);
      named = new FileSystemException(file.toString(), null, action + ": " + problem);
    }
    named.initCause(error);
    return named;
  }

  /** Returns a phrase for an exception without a reason, where the JDK lets the type name it. */
  private static String problemOf(FileSystemException error, String notFound) {
    return switch (error) {
      case NoSuchFileException _ -> notFound;
      case NotDirectoryException _ -> "a folder in the path is not a folder";
      case FileAlreadyExistsException _ -> "a file with the temporary file's name already exists";
      default -> "file system error (" + error.getClass().getSimpleName() + ")";
    };
  }
}
