package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@code compare.sh} in a copy of the repository layout that it expects, and checks which
 * output folders a failed run leaves behind.
 *
 * <p>The copy contains the script, a {@code bin/java-home} that prints this JVM's home, a {@code
 * kiln} launcher with an empty {@code memory_options} line, and a {@code target/} whose {@code
 * classpath.txt} is this test's class path, so the kiln side is the real {@link Compare}. The
 * PyTorch side is a stand-in script chosen per test through {@code PYTHON}.
 */
class CompareScriptTest {

  private static final long TIMEOUT_SECONDS = 120;

  @TempDir Path root;
  private Path script;
  private Path target;

  @BeforeEach
  void buildLayout() throws IOException {
    Path benchmarks = Files.createDirectories(root.resolve("benchmarks"));
    script = benchmarks.resolve("compare.sh");
    Files.copy(Path.of("compare.sh").toAbsolutePath(), script);
    executable(script);

    Path javaHome = root.resolve("bin/java-home");
    Files.createDirectories(javaHome.getParent());
    Files.writeString(javaHome, "#!/bin/sh\necho '" + System.getProperty("java.home") + "'\n");
    executable(javaHome);
    Files.writeString(root.resolve("kiln"), "#!/bin/sh\nmemory_options=()\n");

    target = benchmarks.resolve("target");
    Path compareClass = target.resolve("classes/dev/kiln/benchmarks/Compare.class");
    Files.createDirectories(compareClass.getParent());
    try (InputStream in =
        Compare.class.getClassLoader().getResourceAsStream("dev/kiln/benchmarks/Compare.class")) {
      Files.write(compareClass, in.readAllBytes());
    }
    Files.writeString(target.resolve("classpath.txt"), System.getProperty("java.class.path"));
  }

  @Test
  void unknownModelLeavesNoFolder() throws Exception {
    Run run = run(Map.of("PYTHON", root.resolve("no-python").toString()), "no-such-model");

    assertEquals(2, run.status(), run.output());
    assertTrue(run.output().contains("unknown model preset 'no-such-model'"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void failureBeforeTimingsRemovesFolder() throws Exception {
    Path python = stub("python", "[ \"$1\" = -c ] && exit 0\necho 'stand-in fails' >&2\nexit 5\n");

    Run run = run(Map.of("PYTHON", python.toString()), "default");

    assertEquals(5, run.status(), run.output());
    assertTrue(run.output().contains("stand-in fails"), run.output());
    assertTrue(run.output().contains("failed before any timings were recorded"), run.output());
    assertEquals(List.of(), compareFolders(), run.output());
  }

  @Test
  void existingFolderIsKept() throws Exception {
    Path python = stub("python", "[ \"$1\" = -c ] && exit 0\nexit 5\n");
    Path date = stub("date", "echo 20990101-000000\n");
    Path existing = Files.createDirectories(target.resolve("compare-20990101-000000"));
    Files.writeString(existing.resolve("table.txt"), "an earlier run");
    String path = date.getParent() + ":" + System.getenv("PATH");

    Run run = run(Map.of("PYTHON", python.toString(), "PATH", path), "default");

    assertEquals(1, run.status(), run.output());
    assertTrue(run.output().contains("cannot create " + existing), run.output());
    assertEquals("an earlier run", Files.readString(existing.resolve("table.txt")));
    assertFalse(run.output().contains("was removed"), run.output());
  }

  /** The exit status and the merged stdout and stderr of one run of the script. */
  private record Run(int status, String output) {}

  private Run run(Map<String, String> environment, String models) throws Exception {
    List<String> command = new ArrayList<>(List.of("bash", script.toString()));
    command.addAll(List.of("--threads", "1", "--models", models, "--batches", "2"));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().putAll(environment);
    Process process = builder.start();
    byte[] output = process.getInputStream().readAllBytes();
    if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("compare.sh did not finish within " + TIMEOUT_SECONDS + " s");
    }
    return new Run(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }

  /** Writes an executable shell script named {@code name} into a folder of stand-ins. */
  private Path stub(String name, String body) throws IOException {
    Path file = Files.createDirectories(root.resolve("stubs")).resolve(name);
    Files.writeString(file, "#!/bin/bash\n" + body);
    executable(file);
    return file;
  }

  private List<String> compareFolders() throws IOException {
    try (Stream<Path> entries = Files.list(target)) {
      return entries
          .map(entry -> entry.getFileName().toString())
          .filter(name -> name.startsWith("compare-"))
          .sorted()
          .toList();
    }
  }

  private static void executable(Path file) throws IOException {
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }
}
