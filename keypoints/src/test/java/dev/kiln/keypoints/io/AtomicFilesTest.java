package dev.kiln.keypoints.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Permissions of the files that {@link AtomicFiles} writes, the file its errors name, what a failed
 * write or set of writes leaves, and targets that are symbolic links.
 */
class AtomicFilesTest {
  @TempDir Path folder;

  private void assumePosix() {
    assumeTrue(
        folder.getFileSystem().supportedFileAttributeViews().contains("posix"),
        "skipped: the temporary folder's file system has no POSIX permissions");
  }

  private List<String> namesIn(Path dir) throws IOException {
    try (Stream<Path> children = Files.list(dir)) {
      return children.map(path -> path.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void newFileGetsPlainWritePermissions() throws IOException {
    assumePosix();
    Path plain = folder.resolve("plain.json");
    Path atomic = folder.resolve("atomic.json");

    Files.writeString(plain, "{}");
    AtomicFiles.writeString(atomic, "{}");

    // Both are new files, so both get rw-rw-rw- less the umask. Where the umask is 077, this
    // matches the 0600 of a bare createTempFile too and cannot tell them apart.
    assertEquals(
        PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)),
        PosixFilePermissions.toString(Files.getPosixFilePermissions(atomic)));
  }

  @Test
  void replacedFileKeepsItsPermissions() throws IOException {
    assumePosix();
    Path file = folder.resolve("history.csv");
    Files.writeString(file, "old");
    Set<PosixFilePermission> chosen = PosixFilePermissions.fromString("rw-r-----");
    Files.setPosixFilePermissions(file, chosen);

    AtomicFiles.writeString(file, "new");

    assertEquals("new", Files.readString(file));
    assertEquals(
        PosixFilePermissions.toString(chosen),
        PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
  }

  @Test
  void recreatedTemporaryKeepsPermissions() throws IOException {
    assumePosix();
    Path file = folder.resolve("overlay.png");
    Files.writeString(file, "old");
    Set<PosixFilePermission> chosen = PosixFilePermissions.fromString("rw-rw----");
    Files.setPosixFilePermissions(file, chosen);

    // ImageIO.write(image, format, File) deletes the file it is given and creates it again.
    AtomicFiles.write(
        file,
        temporary -> {
          Files.delete(temporary);
          Files.writeString(temporary, "new");
        });

    assertEquals("new", Files.readString(file));
    assertEquals(
        PosixFilePermissions.toString(chosen),
        PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
  }

  @Test
  void longNamesWritten() throws IOException {
    // 250 bytes is a valid name on common file systems, whose limit is 255 bytes, so the
    // temporary file's name must not simply add its prefix and suffix to it.
    List<String> names = List.of("x".repeat(250), "é".repeat(125), "x" + "😀".repeat(62) + "y");

    for (String name : names) {
      Path file = folder.resolve(name);
      AtomicFiles.writeString(file, "text");

      assertEquals("text", Files.readString(file), name);
    }
    assertEquals(names.stream().sorted().toList(), namesIn(folder));
  }

  @Test
  void truncationKeepsWholeCharacters() {
    assertEquals("abc", AtomicFiles.truncateUtf8("abc", 3));
    assertEquals("ab", AtomicFiles.truncateUtf8("abc", 2));
    assertEquals("a", AtomicFiles.truncateUtf8("aé", 2));
    assertEquals("aé", AtomicFiles.truncateUtf8("aé", 3));
    assertEquals("a", AtomicFiles.truncateUtf8("a😀", 4));
    assertEquals("a😀", AtomicFiles.truncateUtf8("a😀", 5));
  }

  @Test
  void tooLongNameNamesTarget() throws IOException {
    // 256 bytes is over the limit, so the temporary file gets a shortened name but the rename to
    // the full name fails.
    Path file = folder.resolve("x".repeat(256));

    FileSystemException error =
        assertThrows(FileSystemException.class, () -> AtomicFiles.writeString(file, "text"));

    assertEquals(file.toString(), error.getFile());
    assertFalse(error.getMessage().contains(".tmp"), error.getMessage());
    assertEquals(List.of(), namesIn(folder));
  }

  @Test
  void missingFolderDescribedInWords() {
    Path file = folder.resolve("a.png");
    NoSuchFileException missing =
        new NoSuchFileException(folder.resolve(".a.png.1.tmp").toString());

    FileSystemException error =
        AtomicFiles.namingTarget(
            missing, file, "failed to create a temporary file in " + folder, "folder not found");

    assertEquals(file.toString(), error.getFile());
    assertEquals(
        "failed to create a temporary file in " + folder + ": folder not found", error.getReason());
    assertFalse(error.getMessage().contains("NoSuchFileException"), error.getMessage());
  }

  @Test
  void renameFailureNamesTarget() throws IOException {
    Path file = Files.createDirectory(folder.resolve("predictions.json"));

    FileSystemException error =
        assertThrows(FileSystemException.class, () -> AtomicFiles.writeString(file, "text"));

    assertEquals(file.toString(), error.getFile());
    assertFalse(error.getMessage().contains(".tmp"), error.getMessage());
    assertTrue(Files.isDirectory(file), "the folder in the target's place was replaced");
    assertEquals(List.of("predictions.json"), namesIn(folder));
  }

  @Test
  void readOnlyFolderNamesTarget() throws IOException {
    assumePosix();
    Path readOnly = Files.createDirectory(folder.resolve("read-only"));
    Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
    try {
      assumeFalse(
          Files.isWritable(readOnly), "skipped: this user (root) may write to read-only folders");
      Path file = readOnly.resolve("a.png");

      IOException error =
          assertThrows(IOException.class, () -> AtomicFiles.writeString(file, "text"));

      AccessDeniedException denied = assertInstanceOf(AccessDeniedException.class, error);
      assertEquals(file.toString(), denied.getFile());
      assertTrue(denied.getMessage().contains(readOnly.toString()), denied.getMessage());
      assertFalse(denied.getMessage().contains(".tmp"), denied.getMessage());
    } finally {
      Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  @Test
  void failedWriteKeepsOldFile() throws IOException {
    Path file = folder.resolve("options.properties");
    Files.writeString(file, "epochs=1\n");
    byte[] before = Files.readAllBytes(file);

    FileSystemException error =
        assertThrows(
            FileSystemException.class,
            () ->
                AtomicFiles.write(
                    file,
                    temporary -> {
                      Files.writeString(temporary, "epo");
                      // What a stream's write throws when the disk is full.
                      throw new IOException("No space left on device");
                    }));

    assertEquals(file.toString(), error.getFile());
    assertEquals("failed to write: No space left on device", error.getReason());
    assertArrayEquals(before, Files.readAllBytes(file));
    assertEquals(List.of("options.properties"), namesIn(folder));
  }

  /** ImageIO wraps the operating system's reason in an exception of its own. */
  @Test
  void wrappedWriteFailureKeepsTheCause() {
    Path file = folder.resolve("a.png");

    FileSystemException error =
        assertThrows(
            FileSystemException.class,
            () ->
                AtomicFiles.write(
                    file,
                    temporary -> {
                      throw new IOException(
                          "I/O error writing PNG file!",
                          new IOException("No space left on device"));
                    }));

    assertEquals(file.toString(), error.getFile());
    assertEquals(
        "failed to write: I/O error writing PNG file! (No space left on device)",
        error.getReason());
  }

  @Test
  void failedCopyNamesSource() throws IOException {
    Path file = folder.resolve("best.safetensors");
    Path missing = folder.resolve("last.safetensors");

    NoSuchFileException error =
        assertThrows(NoSuchFileException.class, () -> AtomicFiles.copy(missing, file));

    assertEquals(missing.toString(), error.getFile());
    assertEquals(List.of(), namesIn(folder));
  }

  @Test
  void linkIsReplacedAndItsTargetKept() throws IOException {
    Path real = Files.createDirectory(folder.resolve("real"));
    Path links = Files.createDirectory(folder.resolve("links"));
    Path target = Files.writeString(real.resolve("history.csv"), "old");
    Path link = Files.createSymbolicLink(links.resolve("history.csv"), target);

    AtomicFiles.writeString(link, "new");

    assertFalse(Files.isSymbolicLink(link), "the link is still there");
    assertEquals("new", Files.readString(link));
    assertEquals("old", Files.readString(target), "the file that the link led to changed");
  }

  @Test
  void danglingOrLoopingLinkIsReplaced() throws IOException {
    Path dangling =
        Files.createSymbolicLink(folder.resolve("model.txt"), folder.resolve("missing/model.txt"));
    Path first = folder.resolve("first.txt");
    Path second = folder.resolve("second.txt");
    Files.createSymbolicLink(first, second.getFileName());
    Files.createSymbolicLink(second, first.getFileName());

    AtomicFiles.writeString(dangling, "model");
    AtomicFiles.writeString(first, "first");

    assertEquals("model", Files.readString(dangling));
    assertFalse(Files.exists(folder.resolve("missing")), "the link's folder was created");
    assertEquals("first", Files.readString(first));
    assertTrue(Files.isSymbolicLink(second), "the other link of the loop changed");
  }

  /** Returns the bytes of every file in {@code dir}, by name. */
  private Map<String, byte[]> contentsOf(Path dir) throws IOException {
    Map<String, byte[]> contents = new TreeMap<>();
    for (String name : namesIn(dir)) {
      contents.put(name, Files.readAllBytes(dir.resolve(name)));
    }
    return contents;
  }

  private static AtomicFiles.Entry textEntry(Path file, String text) {
    return new AtomicFiles.Entry(file, temporary -> Files.writeString(temporary, text));
  }

  @Test
  void failedSetKeepsEveryTarget() throws IOException {
    Path first = Files.writeString(folder.resolve("a.png"), "old a");
    Path second = Files.writeString(folder.resolve("b.png"), "old b");
    Path third = Files.writeString(folder.resolve("c.png"), "old c");
    Path json = folder.resolve("predictions.json");
    Map<String, byte[]> before = contentsOf(folder);
    List<AtomicFiles.Entry> entries =
        List.of(
            textEntry(first, "new a"),
            textEntry(second, "new b"),
            new AtomicFiles.Entry(
                third,
                temporary -> {
                  Files.writeString(temporary, "new");
                  throw new IOException("No space left on device");
                }),
            textEntry(json, "{}"));

    FileSystemException error =
        assertThrows(FileSystemException.class, () -> AtomicFiles.writeAll(entries));

    assertEquals(third.toString(), error.getFile());
    assertEquals("failed to write: No space left on device", error.getReason());
    assertEquals(List.of("a.png", "b.png", "c.png"), namesIn(folder));
    Map<String, byte[]> after = contentsOf(folder);
    for (String name : before.keySet()) {
      assertArrayEquals(before.get(name), after.get(name), name + " changed");
    }
  }

  @Test
  void setReplacesEveryTarget() throws IOException {
    Path first = Files.writeString(folder.resolve("a.png"), "old a");
    Path second = Files.writeString(folder.resolve("b.png"), "old b");
    Path json = folder.resolve("run").resolve("predictions.json");

    AtomicFiles.writeAll(
        List.of(textEntry(first, "new a"), textEntry(second, "new b"), textEntry(json, "{}")));

    assertEquals("new a", Files.readString(first));
    assertEquals("new b", Files.readString(second));
    assertEquals("{}", Files.readString(json));
    assertEquals(List.of("a.png", "b.png", "run"), namesIn(folder));
    assertEquals(List.of("predictions.json"), namesIn(json.getParent()));
  }

  @Test
  void setReplacesLinksAndKeepsTheirTargets() throws IOException {
    Path real = Files.createDirectory(folder.resolve("real"));
    Path links = Files.createDirectory(folder.resolve("links"));
    Path firstTarget = Files.writeString(real.resolve("a.png"), "old a");
    Path secondTarget = Files.writeString(real.resolve("predictions.json"), "old json");
    Path first = Files.createSymbolicLink(links.resolve("a.png"), firstTarget);
    Path second = Files.createSymbolicLink(links.resolve("predictions.json"), secondTarget);

    AtomicFiles.writeAll(List.of(textEntry(first, "new a"), textEntry(second, "new json")));

    assertFalse(Files.isSymbolicLink(first), "a.png is still a link");
    assertFalse(Files.isSymbolicLink(second), "predictions.json is still a link");
    assertEquals("new a", Files.readString(first));
    assertEquals("new json", Files.readString(second));
    assertEquals("old a", Files.readString(firstTarget), "the file that a.png led to changed");
    assertEquals(
        "old json",
        Files.readString(secondTarget),
        "the file that predictions.json led to changed");
  }
}
