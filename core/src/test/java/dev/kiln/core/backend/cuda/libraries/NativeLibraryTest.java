package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tests loading and binding through {@code java.lang.foreign}: a fake library that the dynamic
 * linker rejects, and the C math library {@code libm.so.6}, which every glibc system has, standing
 * in for cuBLAS and cuDNN to check that missing functions are reported by name. Fake lookups in
 * place of the dynamic linker check that the search goes past a candidate that fails.
 */
class NativeLibraryTest {

  /** The C math library under the same naming scheme as NVIDIA's: {@code libm.so.6}. */
  private static final VendorLibrary LIBM = new VendorLibrary("m", List.of(6), List.of());

  private static final Path SYSTEM_LIBS = Path.of("/usr/lib/x86_64-linux-gnu");

  @TempDir Path root;

  /** Opens libm from the system folder, or skips where this machine keeps it elsewhere. */
  private NativeLibrary openLibm() {
    DiscoveryResult found =
        new LibraryDiscovery(
                Map.of(LibraryDiscovery.PATH_VARIABLE, SYSTEM_LIBS.toString()), root, root)
            .find(LIBM);
    assumeTrue(found.best().isPresent(), "libm.so.6 not found: " + found.describe());
    return NativeLibrary.open(found);
  }

  /** A lookup that finds every name, at the address of the C library's {@code strlen}. */
  private static final SymbolLookup EVERY_SYMBOL =
      name -> Linker.nativeLinker().defaultLookup().find("strlen");

  /** A lookup that finds no name, like a library built without the expected exports. */
  private static final SymbolLookup NO_SYMBOL = name -> Optional.empty();

  /**
   * A loader that returns {@code lookups.get(file)} for each file, or rejects a file missing from
   * the map as the dynamic linker would.
   */
  private static NativeLibrary.FileLoader fakeLinker(Map<Path, SymbolLookup> lookups) {
    return (file, arena) -> {
      SymbolLookup lookup = lookups.get(file);
      if (lookup == null) {
        throw new IllegalArgumentException("Cannot open library: " + file);
      }
      return lookup;
    };
  }

  /** Finds cuBLAS with {@code KILN_CUDA_LIB_PATH} set to {@code folders}, in that order. */
  private DiscoveryResult findCublas(Path... folders) {
    String path = String.join(":", Arrays.stream(folders).map(Path::toString).toList());
    return new LibraryDiscovery(Map.of(LibraryDiscovery.PATH_VARIABLE, path), root, root)
        .find(VendorLibrary.CUBLAS);
  }

  @Test
  void partialLibraryDoesNotHideLaterOne() throws IOException {
    Path partial = FakeLibraries.elf(root.resolve("partial"), "libcublas.so.13");
    Path complete = FakeLibraries.elf(root.resolve("complete"), "libcublas.so.12");
    DiscoveryResult found = findCublas(root.resolve("complete"), root.resolve("partial"));
    NativeLibrary.FileLoader linker =
        fakeLinker(Map.of(partial, NO_SYMBOL, complete, EVERY_SYMBOL));

    try (NativeLibrary chosen =
        NativeLibrary.open(
            found,
            linker,
            library -> {
              new CublasDirect.Functions(library);
              return library;
            })) {
      assertEquals(complete, chosen.path());
      assertEquals(12, chosen.version());
      assertEquals(List.of(partial + " lacks 8 function(s) that kiln binds"), chosen.passedOver());
    }
  }

  @Test
  void linkerFailureIsPassedOverToo() throws IOException {
    Path broken = FakeLibraries.elf(root.resolve("broken"), "libcublas.so.13");
    Path complete = FakeLibraries.elf(root.resolve("complete"), "libcublas.so.12");
    DiscoveryResult found = findCublas(root.resolve("broken"), root.resolve("complete"));

    try (NativeLibrary chosen =
        NativeLibrary.open(found, fakeLinker(Map.of(complete, EVERY_SYMBOL)), library -> library)) {
      assertEquals(complete, chosen.path());
      assertEquals(
          List.of(broken + " failed to load: Cannot open library: " + broken), chosen.passedOver());
    }
  }

  @Test
  void bestCandidatePassesOverNothing() throws IOException {
    Path complete = FakeLibraries.elf(root.resolve("complete"), "libcublas.so.13");
    FakeLibraries.elf(root.resolve("other"), "libcublas.so.12");
    DiscoveryResult found = findCublas(root.resolve("complete"), root.resolve("other"));

    try (NativeLibrary chosen =
        NativeLibrary.open(found, fakeLinker(Map.of(complete, EVERY_SYMBOL)), library -> library)) {
      assertEquals(complete, chosen.path());
      assertTrue(chosen.passedOver().isEmpty(), chosen.passedOver().toString());
    }
  }

  @Test
  void everyPartialCandidateIsNamed() throws IOException {
    Path first = FakeLibraries.elf(root.resolve("a"), "libcublas.so.13");
    Path second = FakeLibraries.elf(root.resolve("b"), "libcublas.so.12");
    DiscoveryResult found = findCublas(root.resolve("a"), root.resolve("b"));
    NativeLibrary.FileLoader linker = fakeLinker(Map.of(first, NO_SYMBOL, second, NO_SYMBOL));

    LibraryLoadException e =
        assertThrows(
            LibraryLoadException.class,
            () -> NativeLibrary.open(found, linker, CublasDirect.Functions::new));

    String message = e.getMessage();
    assertTrue(message.startsWith(first + " lacks 8 function(s) that kiln binds: "), message);
    assertTrue(message.contains("; " + second + " lacks 8 function(s)"), message);
    assertTrue(message.contains("cublasSgemm_v2"), message);
    assertTrue(message.contains("install the library in full"), message);
    assertFalse(message.contains("ldd"), message);
  }

  @Test
  void bindErrorOtherThanLoadStopsSearch() throws IOException {
    Path first = FakeLibraries.elf(root.resolve("a"), "libcublas.so.13");
    Path second = FakeLibraries.elf(root.resolve("b"), "libcublas.so.12");
    DiscoveryResult found = findCublas(root.resolve("a"), root.resolve("b"));
    NativeLibrary.FileLoader linker = fakeLinker(Map.of(first, EVERY_SYMBOL, second, EVERY_SYMBOL));
    List<Path> bound = new ArrayList<>();

    assertThrows(
        VendorException.class,
        () ->
            NativeLibrary.open(
                found,
                linker,
                library -> {
                  bound.add(library.path());
                  throw new VendorException("cublasCreate_v2", 1, "not initialized", "");
                }));
    assertEquals(List.of(first), bound);
  }

  @Test
  void invalidLibraryFailsWithPathAndReason() throws IOException {
    Path file = FakeLibraries.elf(root.resolve("usr/local/cuda/lib64"), "libcudnn.so.9");
    DiscoveryResult found = new LibraryDiscovery(Map.of(), root, root).find(VendorLibrary.CUDNN);
    assertEquals(1, found.candidates().size());

    LibraryLoadException e =
        assertThrows(LibraryLoadException.class, () -> NativeLibrary.open(found));

    assertTrue(e.getMessage().contains(file + " failed to load"), e.getMessage());
    assertTrue(e.getMessage().contains("ldd"), e.getMessage());
  }

  @Test
  void linkerFailureGivesLinkersReason() throws IOException {
    // A valid ELF header with no code: the JDK's message names only the file.
    Path file = FakeLibraries.elf(root.resolve("lib"), "libempty.so");

    try (Arena arena = Arena.ofConfined()) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> NativeLibrary.DYNAMIC_LINKER.load(file, arena));

      assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
      assertTrue(e.getMessage().contains("no loadable segments"), e.getMessage());
    }
  }

  @Test
  void linkerReasonNamesMissingFile() {
    String reason = NativeLibrary.linkerReason(root.resolve("libabsent.so"));

    assertTrue(reason.contains("libabsent.so"), reason);
    assertTrue(reason.contains("No such file or directory"), reason);
  }

  @Test
  void loadableFileHasNoLinkerReason() {
    Path libm = SYSTEM_LIBS.resolve("libm.so.6");
    assumeTrue(Files.exists(libm), libm + " does not exist on this machine");

    assertNull(NativeLibrary.linkerReason(libm));
  }

  @Test
  void noCandidateFailsWithDiscoveryDescription() {
    DiscoveryResult found = new LibraryDiscovery(Map.of(), root, root).find(VendorLibrary.CUBLAS);

    LibraryLoadException e =
        assertThrows(LibraryLoadException.class, () -> NativeLibrary.open(found));

    assertTrue(e.getMessage().contains("no libcublas.so.13 or libcublas.so.12"), e.getMessage());
  }

  @Test
  void rejectedFilesAppearInLoadFailure() throws IOException {
    Path lib = root.resolve("usr/lib64");
    FakeLibraries.file(lib, "libcudnn.so.9", new byte[0]);
    FakeLibraries.elf(lib, "libcudnn.so.8");
    DiscoveryResult found = new LibraryDiscovery(Map.of(), root, root).find(VendorLibrary.CUDNN);

    LibraryLoadException e =
        assertThrows(LibraryLoadException.class, () -> NativeLibrary.open(found));

    assertTrue(e.getMessage().contains(lib.resolve("libcudnn.so.8") + " failed"), e.getMessage());
    assertTrue(e.getMessage().contains("rejected before loading"), e.getMessage());
    assertTrue(e.getMessage().contains("is empty"), e.getMessage());
  }

  @Test
  void bindsAndCallsRealFunction() throws IOException {
    try (NativeLibrary libm = openLibm()) {
      MethodHandle cos = libm.function("cos", FunctionDescriptor.of(JAVA_DOUBLE, JAVA_DOUBLE));

      assertNotNull(cos);
      assertEquals(1.0, (double) NativeLibrary.invoke(cos, 0.0), 0.0);
      assertEquals(-1.0, (double) NativeLibrary.invoke(cos, Math.PI), 1e-15);
      assertEquals(6, libm.version());
      assertTrue(libm.missingFunctions().isEmpty());
      libm.requireAll();
    }
  }

  @Test
  void missingFunctionsAreReportedByName() {
    try (NativeLibrary libm = openLibm()) {
      assertNull(libm.function("cudnnCreate", FunctionDescriptor.of(JAVA_DOUBLE)));
      assertNull(libm.function("cudnnDestroy", FunctionDescriptor.of(JAVA_DOUBLE)));

      LibraryLoadException e = assertThrows(LibraryLoadException.class, libm::requireAll);

      assertEquals(List.of("cudnnCreate", "cudnnDestroy"), libm.missingFunctions());
      assertTrue(e.getMessage().contains("lacks 2 function(s)"), e.getMessage());
      assertTrue(e.getMessage().contains("cudnnCreate, cudnnDestroy"), e.getMessage());
    }
  }

  @Test
  void cublasBindingReportsEveryMissingSymbol() {
    try (NativeLibrary libm = openLibm()) {
      LibraryLoadException e =
          assertThrows(LibraryLoadException.class, () -> new CublasDirect.Functions(libm));

      assertTrue(e.getMessage().contains("lacks 8 function(s)"), e.getMessage());
      for (String name :
          List.of(
              "cublasCreate_v2",
              "cublasSetStream_v2",
              "cublasSgemm_v2",
              "cublasSgemmStridedBatched",
              "cublasSetMathMode",
              "cublasDestroy_v2",
              "cublasGetStatusString")) {
        assertTrue(e.getMessage().contains(name), name + " missing from: " + e.getMessage());
      }
    }
  }

  @Test
  void cudnnBindingReportsEveryMissingSymbol() {
    try (NativeLibrary libm = openLibm()) {
      LibraryLoadException e =
          assertThrows(LibraryLoadException.class, () -> new CudnnFunctions(libm));

      assertTrue(e.getMessage().contains("lacks 48 function(s)"), e.getMessage());
      for (String name :
          List.of(
              "cudnnCreate",
              "cudnnSetStream",
              "cudnnGetErrorString",
              "cudnnGetVersion",
              "cudnnSetTensorNdDescriptor",
              "cudnnGetConvolutionForwardAlgorithm_v7",
              "cudnnConvolutionBackwardFilter",
              "cudnnBatchNormalizationForwardTraining",
              "cudnnSetDropoutDescriptor",
              "cudnnActivationBackward")) {
        assertTrue(e.getMessage().contains(name), name + " missing from: " + e.getMessage());
      }
    }
  }

  @Test
  void readsCString() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment text = arena.allocateFrom("CUDNN_STATUS_BAD_PARAM");

      assertEquals(
          "CUDNN_STATUS_BAD_PARAM",
          NativeLibrary.cString(MemorySegment.ofAddress(text.address()), 256));
      assertNull(NativeLibrary.cString(MemorySegment.NULL, 256));
    }
  }

  @Test
  void companionsLoadBeforeMainLibrary() throws IOException {
    // A valid main library with an invalid companion next to it: the companion's failure is
    // skipped, and the main library loads. libm is the main library here.
    Path folder = root.resolve("lib");
    Files.createDirectories(folder);
    Files.copy(SYSTEM_LIBS.resolve("libm.so.6"), folder.resolve("libm.so.6"));
    FakeLibraries.elf(folder, "libmcompanion.so.6");
    VendorLibrary withCompanion = new VendorLibrary("m", List.of(6), List.of("mcompanion"));
    DiscoveryResult found =
        new LibraryDiscovery(Map.of(LibraryDiscovery.PATH_VARIABLE, folder.toString()), root, root)
            .find(withCompanion);

    try (NativeLibrary libm = NativeLibrary.open(found)) {
      assertEquals(folder.resolve("libm.so.6"), libm.path());
    }
  }
}
