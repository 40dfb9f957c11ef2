package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * A shared library opened through {@code java.lang.foreign}, and the C functions bound from it.
 *
 * <p>{@link #open} tries the candidates that {@link LibraryDiscovery} found, best first. It keeps
 * the first one that the dynamic linker accepts and that the caller's binding step accepts, so a
 * file that loads but lacks functions (an older or partial installation) does not hide a complete
 * one later in the search. {@link #function} binds one C function by name. Where the symbol is
 * missing it records the name and returns null, so that a binding class can ask for all of its
 * functions and then report every missing one at once with {@link #requireAll()}, rather than
 * failing on the first.
 *
 * <p>Closing the library closes its arena, which unloads it. Calling a bound function after that
 * crashes the JVM, so only the owner of the bindings closes it.
 */
// Loading libraries and binding their functions are restricted methods of java.lang.foreign, and
// doing so is this class's purpose. The JVM needs --enable-native-access=ALL-UNNAMED.
@SuppressWarnings("restricted")
final class NativeLibrary implements AutoCloseable {

  private static final Linker LINKER = Linker.nativeLinker();

  /**
   * Opens one library file into an arena, throwing {@link IllegalArgumentException} where the
   * dynamic linker rejects it. Tests replace the dynamic linker with fake lookups.
   */
  @FunctionalInterface
  interface FileLoader {
    SymbolLookup load(Path file, Arena arena);
  }

  /**
   * The loader that calls the dynamic linker ({@code dlopen}). Its failure message ends with the
   * linker's own reason, where {@link #linkerReason} can read it.
   */
  static final FileLoader DYNAMIC_LINKER = NativeLibrary::loadWithLinkerReason;

  /** {@code RTLD_LAZY} of {@code dlfcn.h}: bind functions at their first call. */
  private static final int RTLD_LAZY = 1;

  /** Maximum bytes of a linker message that {@link #linkerReason} reads. */
  private static final int MAX_REASON_BYTES = 4096;

  private final Arena arena;
  private final SymbolLookup lookup;
  private final Path path;
  private final int version;
  private final List<String> passedOver;
  private final List<String> missing = new ArrayList<>();

  private NativeLibrary(
      Arena arena, SymbolLookup lookup, Path path, int version, List<String> passedOver) {
    this.arena = arena;
    this.lookup = lookup;
    this.path = path;
    this.version = version;
    this.passedOver = List.copyOf(passedOver);
  }

  /**
   * Opens the first candidate of {@code found} that loads, with its companions.
   *
   * @return the opened library
   * @throws LibraryLoadException with every candidate's failure, or the discovery's description
   *     where no candidate was found
   */
  static NativeLibrary open(DiscoveryResult found) {
    return open(found, DYNAMIC_LINKER, library -> library);
  }

  /**
   * Opens the first candidate of {@code found} that loads and that {@code bind} accepts.
   *
   * @param bind binds the caller's functions from an opened candidate, and throws {@link
   *     LibraryLoadException} to reject it, such as {@link #requireAll()} for missing functions. A
   *     rejected candidate is closed and the next one is tried.
   * @return what {@code bind} returned for the chosen candidate
   * @throws LibraryLoadException with every candidate's failure, or the discovery's description
   *     where no candidate was found
   */
  static <T> T open(DiscoveryResult found, Function<NativeLibrary, T> bind) {
    return open(found, DYNAMIC_LINKER, bind);
  }

  /** Opens as {@link #open(DiscoveryResult, Function)} does, loading files with {@code loader}. */
  static <T> T open(DiscoveryResult found, FileLoader loader, Function<NativeLibrary, T> bind) {
    if (found.candidates().isEmpty()) {
      throw new LibraryLoadException(found.summary(), found.describe());
    }
    // failures keeps each candidate's full reason for the error. passedOver keeps a shorter one,
    // without the missing functions' names, for the description of a later candidate that loads.
    List<String> failures = new ArrayList<>();
    List<String> passedOver = new ArrayList<>();
    boolean linkerFailed = false;
    boolean functionsMissing = false;
    for (DiscoveryResult.Candidate candidate : found.candidates()) {
      NativeLibrary library;
      Arena arena = Arena.ofShared();
      try {
        loadCompanions(found.library(), candidate, arena, loader);
        SymbolLookup lookup = loader.load(candidate.path(), arena);
        library =
            new NativeLibrary(arena, lookup, candidate.path(), candidate.version(), passedOver);
      } catch (IllegalArgumentException e) {
        // The loader reports a dlopen failure as IllegalArgumentException. DYNAMIC_LINKER adds the
        // linker's reason to its message.
        arena.close();
        failures.add(candidate.path() + " failed to load: " + e.getMessage());
        passedOver.add(failures.getLast());
        linkerFailed = true;
        continue;
      }
      try {
        return bind.apply(library);
      } catch (LibraryLoadException e) {
        library.close();
        if (library.missing.isEmpty()) {
          failures.add(e.getMessage());
          passedOver.add(e.getMessage());
        } else {
          failures.add(library.missingSummary());
          passedOver.add(
              library.path + " lacks " + library.missing.size() + " function(s) that kiln binds");
          functionsMissing = true;
        }
      } catch (RuntimeException | Error e) {
        library.close();
        throw e;
      }
    }
    int count = found.candidates().size();
    String summary =
        count == 1
            ? "the one file found could not be used"
            : "none of the " + count + " files found could be used";
    throw new LibraryLoadException(
        summary,
        String.join("; ", failures)
            + rejectedBeforeLoading(found)
            + ": "
            + advice(linkerFailed, functionsMissing));
  }

  private static String rejectedBeforeLoading(DiscoveryResult found) {
    if (found.rejections().isEmpty()) {
      return "";
    }
    return "; rejected before loading: "
        + String.join("; ", found.rejections().stream().map(Object::toString).toList());
  }

  /** Returns what to do after every candidate failed, by the kinds of failure seen. */
  private static String advice(boolean linkerFailed, boolean functionsMissing) {
    List<String> steps = new ArrayList<>();
    if (linkerFailed) {
      steps.add(
          "check that the library's dependencies are installed (ldd shows which are missing)");
    }
    if (functionsMissing) {
      steps.add(
          "install the library in full, because a file that lacks functions is probably an older"
              + " or partial installation");
    }
    steps.add("point " + LibraryDiscovery.PATH_VARIABLE + " at another installation");
    return steps.size() == 1
        ? steps.getFirst()
        : String.join(", ", steps.subList(0, steps.size() - 1)) + ", or " + steps.getLast();
  }

  /**
   * Opens the companions that exist next to the main library, in their listed order. A companion
   * that fails to load is skipped, because the main library then reports the real problem.
   */
  private static void loadCompanions(
      VendorLibrary library, DiscoveryResult.Candidate candidate, Arena arena, FileLoader loader) {
    Path folder = candidate.path().getParent();
    for (String companion : library.companions()) {
      Path file = folder.resolve(VendorLibrary.fileName(companion, candidate.version()));
      if (Files.exists(file) && LibraryDiscovery.problemWith(file) == null) {
        try {
          loader.load(file, arena);
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
          missingSummary()
              + ". It is probably an older or partial installation; install version "
              + version
              + " in full, or point "
              + LibraryDiscovery.PATH_VARIABLE
              + " at another one");
    }
  }

  /** Returns "PATH lacks N function(s) that kiln binds: NAMES", without advice. */
  private String missingSummary() {
    return path
        + " lacks "
        + missing.size()
        + " function(s) that kiln binds: "
        + String.join(", ", missing);
  }

  /** Returns the names of the functions asked for but not found. */
  List<String> missingFunctions() {
    return List.copyOf(missing);
  }

  /**
   * Returns why each candidate before this one was passed over, best first, such as "PATH lacks 8
   * function(s) that kiln binds". It is empty where the best candidate was chosen.
   */
  List<String> passedOver() {
    return passedOver;
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
   * Opens {@code file} with {@link SymbolLookup#libraryLookup}. JDK 25 reports a failure only as
   * "Cannot open library: PATH", so the message gains the dynamic linker's reason, such as a
   * dependency that is not found or "file too short".
   */
  private static SymbolLookup loadWithLinkerReason(Path file, Arena arena) {
    try {
      return SymbolLookup.libraryLookup(file, arena);
    } catch (IllegalArgumentException e) {
      String reason = linkerReason(file);
      if (reason == null || e.getMessage() == null || e.getMessage().contains(reason)) {
        throw e;
      }
      throw new IllegalArgumentException(e.getMessage() + " (" + reason + ")", e);
    }
  }

  /**
   * Returns the dynamic linker's reason for rejecting {@code file}: its {@code dlerror()} text
   * after one more {@code dlopen} of its absolute path, as the JDK opens it, which fails the same
   * way. glibc keeps that text per thread, so no other thread can replace it in between. Returns
   * null where the C library lacks those functions or the second attempt loads the file after all,
   * which it then closes again.
   */
  static String linkerReason(Path file) {
    SymbolLookup libc = LINKER.defaultLookup();
    MemorySegment dlopen = libc.find("dlopen").orElse(null);
    MemorySegment dlerror = libc.find("dlerror").orElse(null);
    MemorySegment dlclose = libc.find("dlclose").orElse(null);
    if (dlopen == null || dlerror == null || dlclose == null) {
      return null;
    }
    MethodHandle open =
        LINKER.downcallHandle(
            dlopen, FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, JAVA_INT));
    MethodHandle error = LINKER.downcallHandle(dlerror, FunctionDescriptor.of(ValueLayout.ADDRESS));
    MethodHandle close =
        LINKER.downcallHandle(dlclose, FunctionDescriptor.of(JAVA_INT, ValueLayout.ADDRESS));
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment handle =
          (MemorySegment)
              invoke(open, arena.allocateFrom(file.toAbsolutePath().toString()), RTLD_LAZY);
      if (handle.address() != 0) {
        invoke(close, handle);
        return null;
      }
      return cString((MemorySegment) invoke(error), MAX_REASON_BYTES);
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
