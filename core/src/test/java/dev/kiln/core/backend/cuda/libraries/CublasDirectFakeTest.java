package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@link CublasDirect} against a fake {@code libcublas.so.13} compiled from C, which checks
 * that every bound signature passes its arguments through, and that a failed status becomes an
 * exception with the library's own string. A second, symbol-less fake checks that a partial library
 * earlier in the search does not hide a complete one.
 */
class CublasDirectFakeTest {

  /**
   * The fake: the functions kiln binds, recording their arguments. {@code cublasSgemm_v2} returns
   * {@code CUBLAS_STATUS_INVALID_VALUE} (7) when m is negative. BLAS treats a negative size as
   * invalid and m = 0 as an empty product.
   */
  private static final String SOURCE =
      """
      #include <stdint.h>
      static double recorded[40];
      static void* handle_value = (void*) 0xC0B1A5;
      double fake_recorded(int i) { return recorded[i]; }
      int cublasCreate_v2(void** handle) { *handle = handle_value; return 0; }
      int cublasDestroy_v2(void* handle) { recorded[0] = (double) (intptr_t) handle; return 0; }
      int cublasSetStream_v2(void* handle, void* stream) {
        recorded[1] = (double) (intptr_t) stream; return 0;
      }
      int cublasSetMathMode(void* handle, int mode) { recorded[2] = mode; return 0; }
      int cublasGetVersion_v2(void* handle, int* version) { *version = 130100; return 0; }
      const char* cublasGetStatusString(int status) {
        return status == 7 ? "fake: invalid value" : "fake: other";
      }
      int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha,
          const float* a, int lda, const float* b, int ldb, const float* beta, float* c,
          int ldc) {
        if (m < 0) return 7;
        double values[] = {ta, tb, m, n, k, *alpha, (double) (intptr_t) a, lda,
            (double) (intptr_t) b, ldb, *beta, (double) (intptr_t) c, ldc};
        for (int i = 0; i < 13; i++) recorded[3 + i] = values[i];
        return 0;
      }
      int cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k,
          const float* alpha, const float* a, int lda, long long sa, const float* b, int ldb,
          long long sb, const float* beta, float* c, int ldc, long long sc, int count) {
        double values[] = {ta, tb, m, n, k, *alpha, (double) (intptr_t) a, lda, (double) sa,
            (double) (intptr_t) b, ldb, (double) sb, *beta, (double) (intptr_t) c, ldc,
            (double) sc, count};
        for (int i = 0; i < 17; i++) recorded[16 + i] = values[i];
        return 0;
      }
      """;

  @TempDir Path root;

  private FakeNativeLibraries.CountingMemory memory;
  private CublasDirect blas;
  private MethodHandle recorded;
  private Arena arena;

  @BeforeEach
  void loadFake() throws Exception {
    Path folder = root.resolve("fake");
    Path library = FakeNativeLibraries.compile(folder, "libcublas.so.13", SOURCE);
    DiscoveryResult found =
        new LibraryDiscovery(Map.of(LibraryDiscovery.PATH_VARIABLE, folder.toString()), root, root)
            .find(VendorLibrary.CUBLAS);
    memory = new FakeNativeLibraries.CountingMemory();
    blas = CublasDirect.load(found, FakeNativeLibraries.device(memory));
    arena = Arena.ofShared();
    recorded =
        Linker.nativeLinker()
            .downcallHandle(
                SymbolLookup.libraryLookup(library, arena).find("fake_recorded").orElseThrow(),
                FunctionDescriptor.of(JAVA_DOUBLE, JAVA_INT));
  }

  @AfterEach
  void closeLookup() {
    arena.close();
  }

  private double recorded(int index) throws Throwable {
    return (double) recorded.invokeExact(index);
  }

  @Test
  void partialLibraryEarlierInPathIsPassedOver() throws Exception {
    Path partial = root.resolve("with space/lib");
    FakeNativeLibraries.compile(partial, "libcublas.so.13", "int unrelated(void) { return 0; }");
    Path complete = root.resolve("good12");
    FakeNativeLibraries.compile(complete, "libcublas.so.12", SOURCE);
    DiscoveryResult found =
        new LibraryDiscovery(
                Map.of(LibraryDiscovery.PATH_VARIABLE, complete + ":" + partial), root, root)
            .find(VendorLibrary.CUBLAS);

    try (CublasDirect chosen =
        CublasDirect.load(
            found, FakeNativeLibraries.device(new FakeNativeLibraries.CountingMemory()))) {
      String description = chosen.description();
      assertTrue(description.contains("from " + complete.resolve("libcublas.so.12")), description);
      assertTrue(
          description.endsWith(
              "(passed over: "
                  + partial.resolve("libcublas.so.13")
                  + " lacks 8 function(s) that kiln binds)"),
          description);
    }
  }

  @Test
  void loadBindsStreamAndFloatMath() throws Throwable {
    assertEquals(0x5000, recorded(1), "stream handle passed to cublasSetStream_v2");
    assertEquals(CublasDirect.DEFAULT_MATH, recorded(2), "math mode");
    assertTrue(
        blas.description().startsWith("cuBLAS 13.1.0 through java.lang.foreign"),
        blas.description());
    assertTrue(memory.makeCurrentCalls > 0, "context made current before the first call");
  }

  @Test
  void sgemmPassesEveryArgument() throws Throwable {
    blas.sgemm(true, false, 2, 3, 4, 1.5f, 0x1000, 5, 0x2000, 6, 0.25f, 0x3000, 7);

    double[] expected = {1, 0, 2, 3, 4, 1.5, 0x1000, 5, 0x2000, 6, 0.25, 0x3000, 7};
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], recorded(3 + i), "argument " + i);
    }
  }

  @Test
  void stridedBatchedPassesEveryArgument() throws Throwable {
    blas.sgemmStridedBatched(
        true, false, 2, 3, 4, 2f, 0x1000, 5, 1L << 33, 0x2000, 6, 8, 1f, 0x3000, 7, 16, 9);

    // The parameters after the handle, in the order of cublasSgemmStridedBatched's prototype.
    String[] parameters = {
      "transa",
      "transb",
      "m",
      "n",
      "k",
      "alpha",
      "A",
      "lda",
      "strideA",
      "B",
      "ldb",
      "strideB",
      "beta",
      "C",
      "ldc",
      "strideC",
      "batchCount"
    };
    double[] expected = {1, 0, 2, 3, 4, 2, 0x1000, 5, 1L << 33, 0x2000, 6, 8, 1, 0x3000, 7, 16, 9};
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], recorded(16 + i), "argument " + parameters[i]);
    }
  }

  @Test
  void failedStatusCarriesLibraryString() {
    VendorException e =
        assertThrows(
            VendorException.class,
            () -> blas.sgemm(false, false, -1, 3, 4, 1f, 0x1000, 1, 0x2000, 4, 0f, 0x3000, 1));

    assertEquals("cublasSgemm_v2", e.call());
    assertEquals(7, e.status());
    assertTrue(e.getMessage().contains("fake: invalid value"), e.getMessage());
    assertTrue(e.getMessage().contains("m=-1, n=3, k=4"), e.getMessage());
  }

  @Test
  void closeDestroysHandleOnce() throws Throwable {
    blas.close();
    blas.close();

    assertEquals(0xC0B1A5, recorded(0), "handle passed to cublasDestroy_v2");
  }
}
