package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.DeviceMemory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Compiles fake cuBLAS and cuDNN libraries from C source with the system's C compiler, so that the
 * direct bindings run their real {@code java.lang.foreign} calls without a GPU. The fakes record
 * the arguments they receive, which the tests read back through exported {@code fake_*} functions.
 * Tests skip where no C compiler is installed.
 */
final class FakeNativeLibraries {

  private FakeNativeLibraries() {}

  /**
   * Compiles {@code source} into {@code folder/fileName} as a shared library, or skips the test.
   */
  static Path compile(Path folder, String fileName, String source)
      throws IOException, InterruptedException {
    Files.createDirectories(folder);
    Path sourceFile = folder.resolve(fileName + ".c");
    Files.writeString(sourceFile, source, StandardCharsets.US_ASCII);
    Path library = folder.resolve(fileName);
    Process process;
    try {
      process =
          new ProcessBuilder(
                  "cc", "-shared", "-fPIC", "-O0", "-o", library.toString(), sourceFile.toString())
              .redirectErrorStream(true)
              .start();
    } catch (IOException e) {
      assumeTrue(false, "fake library test skipped: no C compiler (cc) on the PATH: " + e);
      throw e;
    }
    boolean finished = process.waitFor(60, TimeUnit.SECONDS);
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!finished || process.exitValue() != 0) {
      throw new IllegalStateException("cc failed to compile " + sourceFile + ":\n" + output);
    }
    return library;
  }

  /** Returns a device whose memory is fake addresses and whose stream handle is 0x5000. */
  static VendorDevice device(CountingMemory memory) {
    return new VendorDevice(
        "cuda:fake", 0x5000, null, new CachingAllocator(memory), memory::makeCurrent);
  }

  /**
   * Device memory that hands out distinct fake addresses and counts calls. {@link #events} lists
   * its allocations and the device's makeCurrent calls in the order they were made.
   */
  static final class CountingMemory implements DeviceMemory {
    static final String ALLOCATE = "allocate";
    static final String MAKE_CURRENT = "makeCurrent";

    long next = 0x100000;
    int makeCurrentCalls;
    final List<String> events = new ArrayList<>();

    void makeCurrent() {
      makeCurrentCalls++;
      events.add(MAKE_CURRENT);
    }

    /** Returns the last two events, or fewer when there were fewer. */
    List<String> lastEvents() {
      return List.copyOf(events.subList(Math.max(0, events.size() - 2), events.size()));
    }

    @Override
    public long allocate(long bytes) {
      events.add(ALLOCATE);
      long address = next;
      next += Math.max(bytes, 512);
      return address;
    }

    @Override
    public void free(long address, long bytes) {}

    @Override
    public MemoryInfo memoryInfo() {
      return new MemoryInfo(1L << 30, 1L << 30);
    }

    @Override
    public String deviceName() {
      return "cuda:fake";
    }
  }
}
