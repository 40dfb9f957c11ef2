package dev.kiln.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The loaded {@code libkiln_emu.so} and downcall handles for the C functions it exports.
 *
 * <p>A library stays loaded until the JVM exits, because its worker threads park inside it between
 * launches and unloading it under them would crash the process. So each path is loaded once and
 * shared by every {@link EmulatedKernels}.
 */
final class EmulatorLibrary {
  /** The system property that names the library file. Tests set it to the freshly built one. */
  static final String PATH_PROPERTY = "kiln.emu.lib";

  /** Path of the library inside the jar. */
  static final String RESOURCE = "/dev/kiln/kernels/linux-x86_64/libkiln_emu.so";

  private static final String BUILD_HINT =
      "build it with `mvn -pl kernels package` (Linux x86-64 with g++ 12), or point the system"
          + " property "
          + PATH_PROPERTY
          + " at a libkiln_emu.so";

  private static final Map<Path, EmulatorLibrary> LOADED = new ConcurrentHashMap<>();
  private static volatile Path extracted;

  final MethodHandle launch;
  final MethodHandle kernelCount;
  final MethodHandle kernelName;
  final MethodHandle kernelSignature;
  final MethodHandle setBarrierTimeout;
  final MethodHandle setSchedule;
  final Path path;

  @SuppressWarnings("restricted") // loading native code is what this class is for
  private EmulatorLibrary(Path path) {
    this.path = path;
    Linker linker = Linker.nativeLinker();
    SymbolLookup symbols = SymbolLookup.libraryLookup(path, Arena.global());
    ValueLayout.OfInt u32 = ValueLayout.JAVA_INT;
    launch =
        linker.downcallHandle(
            find(symbols, "kiln_emu_launch"),
            FunctionDescriptor.of(
                u32,
                ValueLayout.ADDRESS,
                u32,
                u32,
                u32,
                u32,
                u32,
                u32,
                u32,
                ValueLayout.ADDRESS,
                ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG));
    kernelCount =
        linker.downcallHandle(find(symbols, "kiln_emu_kernel_count"), FunctionDescriptor.of(u32));
    kernelName =
        linker.downcallHandle(
            find(symbols, "kiln_emu_kernel_name"), FunctionDescriptor.of(cString(), u32));
    kernelSignature =
        linker.downcallHandle(
            find(symbols, "kiln_emu_kernel_signature"),
            FunctionDescriptor.of(cString(), ValueLayout.ADDRESS));
    setBarrierTimeout =
        linker.downcallHandle(
            find(symbols, "kiln_emu_set_barrier_timeout_ms"), FunctionDescriptor.ofVoid(u32));
    setSchedule =
        linker.downcallHandle(
            find(symbols, "kiln_emu_set_schedule"),
            FunctionDescriptor.ofVoid(u32, ValueLayout.JAVA_LONG));
  }

  /**
   * Finds and loads the library: the file named by the system property {@value #PATH_PROPERTY}, or
   * else the copy in the jar, extracted once to a temporary file.
   *
   * @throws IllegalStateException when neither exists or the file cannot be loaded
   */
  static EmulatorLibrary find() {
    String property = System.getProperty(PATH_PROPERTY);
    if (property != null && !property.isBlank()) {
      Path path = Path.of(property).toAbsolutePath();
      if (!Files.isRegularFile(path)) {
        throw new IllegalStateException(
            "the system property "
                + PATH_PROPERTY
                + " names "
                + path
                + ", which does not exist; "
                + BUILD_HINT);
      }
      return loaded(path);
    }
    return loaded(extractResource());
  }

  private static EmulatorLibrary loaded(Path path) {
    try {
      return LOADED.computeIfAbsent(path, EmulatorLibrary::new);
    } catch (IllegalArgumentException | IllegalCallerException error) {
      throw new IllegalStateException(
          "cannot load "
              + path
              + " ("
              + error.getMessage()
              + "); the JVM needs"
              + " --enable-native-access=ALL-UNNAMED, and the library was built for Linux"
              + " x86-64, so "
              + BUILD_HINT,
          error);
    }
  }

  private static synchronized Path extractResource() {
    if (extracted != null) {
      return extracted;
    }
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "");
    try (InputStream in = EmulatorLibrary.class.getResourceAsStream(RESOURCE)) {
      if (in == null || !os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
        throw new IllegalStateException(
            "libkiln_emu.so is missing: the system property "
                + PATH_PROPERTY
                + " is not set, and the jar's resource "
                + RESOURCE.substring(1)
                + (in == null ? " is not on the class path" : " only runs on Linux x86-64")
                + " (this JVM runs on "
                + os
                + " "
                + arch
                + "); "
                + BUILD_HINT);
      }
      Path file = Files.createTempFile("libkiln_emu", ".so");
      file.toFile().deleteOnExit();
      Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      extracted = file;
      return file;
    } catch (IOException error) {
      throw new UncheckedIOException(
          "cannot extract " + RESOURCE.substring(1) + " to a temporary file", error);
    }
  }

  private static MemorySegment find(SymbolLookup symbols, String name) {
    return symbols
        .find(name)
        .orElseThrow(
            () ->
                new IllegalStateException(
                    "the emulation library has no symbol "
                        + name
                        + "; it is older than this jar, so rebuild it: "
                        + BUILD_HINT));
  }

  /**
   * Returns the layout of a {@code const char*} result. Its target layout lets Java read the string
   * up to its NUL, and the library's strings live as long as the library.
   */
  @SuppressWarnings("restricted")
  private static ValueLayout cString() {
    return ValueLayout.ADDRESS.withTargetLayout(
        MemoryLayout.sequenceLayout(Integer.MAX_VALUE, ValueLayout.JAVA_BYTE));
  }
}
