package dev.kiln.keypoints.train;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A new run's claim on its folder, from {@link Trainer#start} to the first checkpoint: the empty
 * file {@value #FILE_NAME}, locked while the run holds it. Two runs given the same folder could
 * otherwise both find it empty while their data loads, and the clean-up of the one that fails would
 * delete the other's files.
 *
 * <p>The operating system releases the lock when the process ends. So a claim file left by a run
 * that was killed is unlocked, and the next start takes it over instead of rejecting the folder.
 */
final class FolderClaim implements AutoCloseable {

  /** Name of the claim file in the run folder. */
  static final String FILE_NAME = ".kiln-train-starting";

  private final Path file;
  private final FileChannel channel;

  private FolderClaim(Path file, FileChannel channel) {
    this.file = file;
    this.channel = channel;
  }

  /**
   * Claims {@code run}, which must exist.
   *
   * @throws IOException if another live run has claimed the folder, naming it and what to do
   */
  static FolderClaim take(Path run) throws IOException {
    Path file = run.resolve(FILE_NAME);
    try {
      // Creating the file is atomic, so of two runs that found the folder empty at once, only
      // one goes on, even where the file system has no locks.
      FileChannel channel =
          FileChannel.open(
              file,
              StandardOpenOption.CREATE_NEW,
              StandardOpenOption.WRITE,
              LinkOption.NOFOLLOW_LINKS);
      FileLock lock;
      try {
        lock = tryLock(channel);
      } catch (IOException e) {
        // Without locks, the new file alone marks the claim, and a stale one is never taken over.
        return new FolderClaim(file, channel);
      }
      if (lock == null) {
        // Another start took the file over as stale between its creation and this lock.
        channel.close();
        throw claimed(run);
      }
      return new FolderClaim(file, channel);
    } catch (FileAlreadyExistsException e) {
      return takeOver(run, file);
    }
  }

  private static IOException claimed(Path run) {
    return new IOException(
        "output folder "
            + run
            + " is claimed by another kiln train that is starting there ("
            + FILE_NAME
            + "): wait for it, or pass another --output");
  }

  /** Takes over a claim file that no live run holds, or throws if one does. */
  private static FolderClaim takeOver(Path run, Path file) throws IOException {
    FileChannel channel =
        FileChannel.open(file, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
    FileLock lock;
    try {
      lock = tryLock(channel);
    } catch (IOException e) {
      // NOTE: untried on a real file system without locks; there a stale claim blocks the folder.
      channel.close();
      throw new IOException(
          "output folder "
              + run
              + " has a claim file, "
              + FILE_NAME
              + ", and its file system cannot lock files to tell whether the run that made it is"
              + " alive ("
              + e.getMessage()
              + "). If no kiln train is starting there, delete that file; otherwise pass another"
              + " --output",
          e);
    }
    if (lock == null) {
      channel.close();
      throw claimed(run);
    }
    return new FolderClaim(file, channel);
  }

  /**
   * Returns the lock on the whole file, or null where another process or this JVM holds it.
   *
   * @throws IOException where the file system does not lock files
   */
  private static FileLock tryLock(FileChannel channel) throws IOException {
    try {
      return channel.tryLock();
    } catch (OverlappingFileLockException e) {
      return null;
    }
  }

  /** Deletes the claim file and then releases its lock. */
  @Override
  public void close() throws IOException {
    try {
      Files.deleteIfExists(file);
    } finally {
      channel.close();
    }
  }
}
