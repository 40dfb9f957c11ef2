package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-thread scratch arrays of the CPU kernels. */
class WorkspaceTest {

  @TempDir Path dir;

  @Test
  void arrayReusedUntilLargerRequest() {
    float[] first = Workspace.floats(Workspace.Slot.CONV_PARTIAL, 100);
    float[] again = Workspace.floats(Workspace.Slot.CONV_PARTIAL, 50);
    float[] larger = Workspace.floats(Workspace.Slot.CONV_PARTIAL, 200);

    assertSame(first, again);
    assertNotSame(first, larger);
    assertEquals(200, larger.length);
    assertNotSame(larger, Workspace.floats(Workspace.Slot.CONV_PRODUCT, 200), "another slot");
  }

  @Test
  void idleArraysFreedUnderMemoryPressure() throws Exception {
    // The JVM clears every soft reference to an object that nothing else reaches before it throws
    // OutOfMemoryError, so the child's scratch array must be gone once its heap has run out.
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command = new ArrayList<>();
    command.add(java.toString());
    command.add("-Xmx64m");
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(HeapPressure.class.getName());
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().remove("JDK_JAVA_OPTIONS");
    builder.environment().remove("JAVA_TOOL_OPTIONS");
    builder.environment().remove("_JAVA_OPTIONS");
    Path output = dir.resolve("child.txt");
    builder.redirectErrorStream(true);
    builder.redirectOutput(output.toFile());
    Process process = builder.start();
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish in 120 s");

    String text = Files.readString(output);
    assertEquals(0, process.exitValue(), text);
    assertTrue(text.contains("scratch array cleared"), text);
  }

  /** Run in a child JVM with a 64 MiB heap by {@link #idleArraysFreedUnderMemoryPressure}. */
  static final class HeapPressure {
    public static void main(String[] args) {
      // 16 MiB of scratch, which the workspace keeps after the caller lets go of it.
      WeakReference<float[]> scratch =
          new WeakReference<>(Workspace.floats(Workspace.Slot.CONV_COLUMNS, 4 << 20));
      List<float[]> filler = new ArrayList<>();
      try {
        while (true) {
          filler.add(new float[1 << 18]);
        }
      } catch (OutOfMemoryError expected) {
        filler.clear();
      }
      if (scratch.get() != null) {
        System.out.println("the scratch array outlived an OutOfMemoryError");
        System.exit(3);
      }
      System.out.println("scratch array cleared");
    }
  }
}
