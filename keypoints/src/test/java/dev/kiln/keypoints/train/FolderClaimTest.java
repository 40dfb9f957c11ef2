package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The claim file of a run folder. Both claims in a test live in one JVM, where the second claim is
 * rejected as it would be in another process.
 */
class FolderClaimTest {
  @TempDir Path run;

  @Test
  void takeCreatesLockedFile() throws IOException {
    try (FolderClaim _ = FolderClaim.take(run, FolderClaim.Purpose.START)) {
      assertTrue(Files.isRegularFile(run.resolve(FolderClaim.FILE_NAME)));
      assertEquals(0, Files.size(run.resolve(FolderClaim.FILE_NAME)));
    }

    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "close deletes the file");
  }

  @Test
  void heldClaimRejectsStartAndResume() throws IOException {
    try (FolderClaim _ = FolderClaim.take(run, FolderClaim.Purpose.START)) {
      IOException start =
          assertThrows(IOException.class, () -> FolderClaim.take(run, FolderClaim.Purpose.START));
      IOException resume =
          assertThrows(IOException.class, () -> FolderClaim.take(run, FolderClaim.Purpose.RESUME));

      assertEquals(
          "output folder "
              + run
              + " is claimed by another kiln train that is running there (it holds the lock on "
              + FolderClaim.FILE_NAME
              + "): wait for it to end or stop it, or pass another --output",
          start.getMessage());
      assertEquals(
          "run folder "
              + run
              + " is claimed by another kiln train that is running there (it holds the lock on "
              + FolderClaim.FILE_NAME
              + "): wait for it to end or stop it, and resume after that",
          resume.getMessage());
      assertTrue(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "the held claim stays");
    }
  }

  @Test
  void requireUnclaimedRejectsOnlyHeldClaim() throws IOException {
    assertDoesNotThrow(
        () -> FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.START), "no claim file");
    assertDoesNotThrow(
        () -> FolderClaim.requireUnclaimed(run.resolve("missing"), FolderClaim.Purpose.RESUME),
        "no folder");

    try (FolderClaim _ = FolderClaim.take(run, FolderClaim.Purpose.START)) {
      IOException error =
          assertThrows(
              IOException.class,
              () -> FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.RESUME));
      assertTrue(error.getMessage().startsWith("run folder " + run + " is claimed"));
    }

    // A claim file that no run holds, as a killed run leaves it.
    Files.createFile(run.resolve(FolderClaim.FILE_NAME));
    assertDoesNotThrow(
        () -> FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.START), "stale claim file");
    assertTrue(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "the check deletes nothing");
  }

  @Test
  void staleClaimTakenOver() throws IOException {
    Files.createFile(run.resolve(FolderClaim.FILE_NAME));

    try (FolderClaim _ = FolderClaim.take(run, FolderClaim.Purpose.RESUME)) {
      assertThrows(IOException.class, () -> FolderClaim.take(run, FolderClaim.Purpose.START));
    }

    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)));
  }

  /**
   * Checks in this JVM that a held claim rejects, and then that another process still cannot lock
   * the claim file. On Linux, closing any channel on a file releases all of the JVM's locks on it,
   * so a check that opened and closed its own channel would free the folder for other processes.
   */
  @Test
  void checksInSameJvmKeepClaimLocked() throws Exception {
    try (FolderClaim _ = FolderClaim.take(run, FolderClaim.Purpose.START)) {
      assertThrows(
          IOException.class, () -> FolderClaim.requireUnclaimed(run, FolderClaim.Purpose.RESUME));
      assertThrows(IOException.class, () -> FolderClaim.take(run, FolderClaim.Purpose.RESUME));

      assertEquals("locked elsewhere", lockFromOtherProcess(run.resolve(FolderClaim.FILE_NAME)));
    }
  }

  /** Tries to lock {@code file} from a new JVM, and returns what that JVM printed. */
  private static String lockFromOtherProcess(Path file) throws Exception {
    Path source = Files.createTempDirectory("lock-probe").resolve("LockProbe.java");
    Files.writeString(
        source,
        """
        import java.nio.channels.FileChannel;
        import java.nio.file.Path;
        import java.nio.file.StandardOpenOption;

        public class LockProbe {
          public static void main(String[] args) throws Exception {
            try (FileChannel channel =
                FileChannel.open(Path.of(args[0]), StandardOpenOption.WRITE)) {
              System.out.print(channel.tryLock() == null ? "locked elsewhere" : "lock taken");
            }
          }
        }
        """);
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process probe =
        new ProcessBuilder(java.toString(), source.toString(), file.toString())
            .redirectErrorStream(true)
            .start();
    String output = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, probe.waitFor(), output);
    return output.strip();
  }

  @Test
  void claimFileNamesRecognized() {
    assertTrue(FolderClaim.isClaimFile(".kiln-train.lock"));
    assertTrue(FolderClaim.isClaimFile(".kiln-train-starting"), "the name of earlier versions");
    assertFalse(FolderClaim.isClaimFile("last.safetensors"));
  }
}
