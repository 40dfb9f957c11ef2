package dev.kiln.core.backend.cuda.libraries;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A shared library opened through {@code java.lang.foreign}, and the C functions bound from it.
 *
 * <p>{@link #open} tries the candidates that {@link LibraryDiscovery} found, best first, and keeps
 * the first one that the dynamic linker accepts. {@link #function} binds one C function by name.
 * Where the symbol is missing it records the name and returns null, so that a binding class can ask
 * for all of its functions and then report every missing one at once with {@link #requireAll()},
 * rather than failing on the first.
 *
 * <p>Closing the library closes its arena, which unloads it. Calling a bound function after that
 * crashes the JVM, so only the owner of the bindings closes it.
 */
// Loading libraries and binding their functions are restricted methods of java.lang.foreign, and
// doing so is this class's purpose. The JVM needs --enable-native-access=ALL-UNNAMED.
@SuppressWarnings("restricted")
final class NativeLibrary implements AutoCloseable {

  private static final Linker LINKER = Linker.nativeLinker();

  private final Arena arena;
  private final SymbolLookup lookup;
  private final Path path;
  private final int version;
  private final List<String> missing = new ArrayList<>();

  private NativeLibrary(Arena arena, SymbolLookup lookup, Path path, int version) {
    this.arena = arena;
    this.lookup = lookup;
    this.path = path;
    this.version = version;
  }

  /**
   * Opens the first candidate of {@code found} that loads, with its companions.
   *
   * @return the opened library
   * @throws LibraryLoadException with every candidate's failure, or the discovery's description
   *     where no candidate was found
   */
  static NativeLibrary open(DiscoveryResult found) {
    if (found.candidates().isEmpty()) {
      throw new LibraryLoadException(found.describe());
    }
    List<String> failures = new ArrayList<>();
    for (DiscoveryResult.Candidate candidate : found.candidates()) {
      Arena arena = Arena.ofShared();
      try {
        loadCompanions(found.library(), candidate, arena);
        SymbolLookup lookup = SymbolLookup.libraryLookup(candidate.path(), arena);
        return new NativeLibrary(arena, lookup, candidate.path(), candidate.version());
      } catch (IllegalArgumentException e) {
        // libraryLookup reports a dlopen failure as IllegalArgumentException, with dlerror()'s
        // text when the JDK has it.
        arena.close();
        failures.add(candidate.path() + " failed to load: " + e.getMessage());
      }
    }
    String rejected =
        found.rejections().isEmpty()
            ? ""
            : "; rejected before loading: "
                + String.join("; ", found.rejections().stream().map(Object::toString).toList());
    throw new LibraryLoadException(
        String.join("; ", failures)
            + rejected
            + ": check that the library's dependencies are installed (ldd shows which are"
            + " missing), or point "
            + LibraryDiscovery.PATH_VARIABLE
            + " at another installation");
  }

  /**
   * Opens the companions that exist next to the main library, in their listed order. A companion
   * that fails to load is skipped, because the main library then reports the real problem.
   */
  private static void loadCompanions(
      VendorLibrary library, DiscoveryResult.Candidate candidate, Arena arena) {
    Path folder = candidate.path().getParent();
    for (String companion : library.companions()) {
      Path file = folder.resolve(VendorLibrary.fileName(companion, candidate.version()));
      if (Files.exists(file) && LibraryDiscovery.problemWith(file) == null) {
        try {
          SymbolLookup.libraryLookup(file, arena);
        } catch (IllegalArgumentException e) {
          // Skipped on purpose: see the method's comment.
        }
      }
    }
  }

  /**
   * Binds C function {@code name}, or records it as missing and returns null.
   *
   * @param descriptor the C signature, such as {@code (pointer) -> int}
   */
  MethodHandle function(String name, FunctionDescriptor descriptor) {
    return lookup
        .find(name)
        .map(address -> LINKER.downcallHandle(address, descriptor))
        .orElseGet(
            () -> {
              missing.add(name);
              return null;
            });
  }

  /**
   * Throws unless every function asked for was found.
   *
   * @throws LibraryLoadException naming every missing symbol
   */
  void requireAll() {
    if (!missing.isEmpty()) {
      throw new LibraryLoadException(
          path
              + " lacks "
              + missing.size()
              + " function(s) that kiln binds: "
              + String.join(", ", missing)
              + ". It is probably an older or partial installation; install version "
              + version
              + " in full, or point "
              + LibraryDiscovery.PATH_VARIABLE
              + " at another one");
    }
  }

  /** Returns the names of the functions asked for but not found. */
  List<String> missingFunctions() {
    return List.copyOf(missing);
  }

  /** Returns the file that was loaded. */
  Path path() {
    return path;
  }

  /** Returns the major version that the file's name carries. */
  int version() {
    return version;
  }

  /**
   * Calls a bound C function that returns a status code.
   *
   * <p>{@link MethodHandle#invokeWithArguments} adapts boxed arguments at each call. That is slower
   * than {@code invokeExact}, but small next to a cuBLAS or cuDNN call, and it keeps calls with a
   * dozen arguments readable.
   */
  static int status(MethodHandle function, Object... arguments) {
    return (int) invoke(function, arguments);
  }

  /** Calls a bound C function and returns its boxed result. */
  static Object invoke(MethodHandle function, Object... arguments) {
    try {
      return function.invokeWithArguments(arguments);
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable e) {
      throw new IllegalStateException("native call failed: " + e, e);
    }
  }

  /**
   * Reads a NUL-terminated C string that a library returned, such as an error string, or returns
   * null for a null pointer. The read stops at {@code maxBytes}, because a C string's length is
   * unknown until its terminator is found.
   */
  static String cString(MemorySegment pointer, int maxBytes) {
    if (pointer.address() == 0) {
      return null;
    }
    return pointer.reinterpret(maxBytes).getString(0);
  }

  /** Unloads the library. */
  @Override
  public void close() {
    arena.close();
  }
}
