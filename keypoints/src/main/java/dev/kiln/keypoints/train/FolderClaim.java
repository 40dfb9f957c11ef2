package dev.kiln.keypoints.train;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A run's claim on its folder, from {@link Trainer#start} or {@link Trainer#resume} until the run
 * ends: the empty file {@value #FILE_NAME}, locked while the run holds it. Without it, two new runs
 * given the same folder could both find it empty while their data loads, and the clean-up of the
 * one that fails would delete the other's files. A resume of a run that is still training would
 * write its checkpoints and history over that run's.
 *
 * <p>The operating system releases the lock when the process ends. So a claim file left by a run
 * that was killed is unlocked, and the next start or resume takes it over instead of rejecting the
 * folder.
 */
final class FolderClaim implements AutoCloseable {

  /** Name of the claim file in the run folder. */
  static final String FILE_NAME = ".kiln-train.lock";

  /**
   * Name of the claim file that earlier versions held only until a new run's first checkpoint. A
   * run killed in that time left it behind, so a folder that contains only this file counts as
   * empty.
   */
  static final String OLD_FILE_NAME = ".kiln-train-starting";

  /** The kind of run that claims the folder, which decides the wording of a rejection. */
  enum Purpose {
    /** A new run, given the folder with --output. */
    START("output folder", "or pass another --output", "pass another --output"),
    /** A resume, given the folder with --resume. */
    RESUME("run folder", "and resume after that", "wait for that run to end");

    /** The folder as the rejection names it. */
    private final String folder;

    /** Advice that follows "wait for it to end or stop it" where a live run holds the lock. */
    private final String whenClaimed;

    /** Advice where a claim file exists and the file system cannot lock it to check for a run. */
    private final String whenUnlockable;

    Purpose(String folder, String whenClaimed, String whenUnlockable) {
      this.folder = folder;
      this.whenClaimed = whenClaimed;
      this.whenUnlockable = whenUnlockable;
    }
  }

  /**
   * Real paths of the claim files that this JVM has locked or is checking, which get no second
   * channel. On Linux, closing any channel on a file releases all of the JVM's locks on it, as the
   * {@link FileLock} documentation warns, so a second channel would free the folder for others.
   */
  private static final Set<Path> IN_USE_HERE = ConcurrentHashMap.newKeySet();

  private final Path file;
  private final FileChannel channel;

  /** The entry of {@link #IN_USE_HERE} that {@link #close} removes. */
  private final Path inUseKey;

  private FolderClaim(Path file, FileChannel channel, Path inUseKey) {
    this.file = file;
    this.channel = channel;
    this.inUseKey = inUseKey;
  }

  /**
   * Claims {@code run}, which must exist, for the new run or the resume that {@code purpose} names.
   *
   * @throws IOException if another live run has claimed the folder, naming it and what to do
   */
  static FolderClaim take(Path run, Purpose purpose) throws IOException {
    Path inUseKey = markInUse(run, purpose);
    FolderClaim claim = null;
    try {
      claim = lockClaimFile(run, purpose, inUseKey);
      return claim;
    } finally {
      if (claim == null) {
        IN_USE_HERE.remove(inUseKey);
      }
    }
  }

  /** Creates and locks the claim file, or takes over a stale one, for {@link #take}. */
  private static FolderClaim lockClaimFile(Path run, Purpose purpose, Path inUseKey)
      throws IOException {
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
        return new FolderClaim(file, channel, inUseKey);
      }
      if (lock == null) {
        // Another start or resume took the file over as stale between its creation and this lock.
        channel.close();
        throw claimed(run, purpose);
      }
      return new FolderClaim(file, channel, inUseKey);
    } catch (FileAlreadyExistsException e) {
      return takeOver(run, file, purpose, inUseKey);
    } catch (AccessDeniedException e) {
      // NOTE: untested, because the tests run as root, which may write into any folder.
      throw new AccessDeniedException(
          run.toString(),
          null,
          "permission denied to create "
              + FILE_NAME
              + ": the run folder must be writable, because training writes its checkpoints"
              + " there; make it writable for this user");
    }
  }

  /**
   * Records the claim file of {@code run} in {@link #IN_USE_HERE} and returns its key, or rejects
   * {@code run} where this JVM already uses that claim file.
   */
  private static Path markInUse(Path run, Purpose purpose) throws IOException {
    Path inUseKey = run.toRealPath().resolve(FILE_NAME);
    if (!IN_USE_HERE.add(inUseKey)) {
      throw claimed(run, purpose);
    }
    return inUseKey;
  }

  /**
   * Rejects {@code run} if a live run has claimed it, and does nothing where the folder has no
   * claim file, or a stale one. Where the file system cannot lock files it does nothing either, and
   * {@link #take} reports that.
   *
   * @throws IOException if another live run has claimed the folder, naming it and what to do
   */
  static void requireUnclaimed(Path run, Purpose purpose) throws IOException {
    if (!Files.isDirectory(run)) {
      return;
    }
    Path inUseKey = markInUse(run, purpose);
    try {
      requireUnlocked(run, purpose);
    } finally {
      IN_USE_HERE.remove(inUseKey);
    }
  }

  /** Rejects {@code run} if another process holds the lock on its claim file. */
  private static void requireUnlocked(Path run, Purpose purpose) throws IOException {
    FileChannel channel;
    try {
      channel =
          FileChannel.open(
              run.resolve(FILE_NAME), StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException e) {
      return;
    }
    try (channel) {
      FileLock lock;
      try {
        lock = tryLock(channel);
      } catch (IOException e) {
        return;
      }
      if (lock == null) {
        throw claimed(run, purpose);
      }
    }
  }

  /** Tests whether {@code name} is a claim file's name, this version's or an earlier one's. */
  static boolean isClaimFile(String name) {
    return name.equals(FILE_NAME) || name.equals(OLD_FILE_NAME);
  }

  private static IOException claimed(Path run, Purpose purpose) {
    return new IOException(
        purpose.folder
            + " "
            + run
            + " is claimed by another kiln train that is running there (it holds the lock on "
            + FILE_NAME
            + "): wait for it to end or stop it, "
            + purpose.whenClaimed);
  }

  /** Takes over a claim file that no live run holds, or throws if one does. */
  private static FolderClaim takeOver(Path run, Path file, Purpose purpose, Path inUseKey)
      throws IOException {
    FileChannel channel =
        FileChannel.open(file, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
    FileLock lock;
    try {
      lock = tryLock(channel);
    } catch (IOException e) {
      // NOTE: untried on a real file system without locks; there a stale claim blocks the folder.
      channel.close();
      throw new IOException(
          purpose.folder
              + " "
              + run
              + " has a claim file, "
              + FILE_NAME
              + ", and its file system cannot lock files to tell whether the run that made it is"
              + " alive ("
              + e.getMessage()
              + "). If no kiln train is running there, delete that file; otherwise "
              + purpose.whenUnlockable,
          e);
    }
    if (lock == null) {
      channel.close();
      throw claimed(run, purpose);
    }
    return new FolderClaim(file, channel, inUseKey);
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
      try {
        channel.close();
      } finally {
        IN_USE_HERE.remove(inUseKey);
      }
    }
  }
}
