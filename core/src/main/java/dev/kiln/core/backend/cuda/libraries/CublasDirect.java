package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuBLAS bound directly through {@code java.lang.foreign}, for machines with cuBLAS 13 (CUDA 13),
 * where JCublas, built for {@code libcublas.so.12}, cannot load.
 *
 * <p>cuBLAS's API is a handle ({@code cublasHandle_t}, an opaque pointer) plus functions that take
 * it and return a {@code cublasStatus_t}. The exported names of the current API end in {@code _v2}
 * for the functions that predate cuBLAS 4 ({@code cublasCreate_v2}, {@code cublasSgemm_v2}); the
 * header maps the plain names onto them with macros, which a binding by symbol name does not see.
 *
 * <p>Every status is checked, and a failure becomes a {@link VendorException} that names the call
 * and carries {@code cublasGetStatusString}'s text. The math mode is set to {@code
 * CUBLAS_DEFAULT_MATH} (0), plain float32, because kiln checks its GPU results against the CPU
 * reference at float32 tolerances, which TF32 tensor-core math (10-bit mantissa) would not meet.
 */
public final class CublasDirect implements VendorBlas {

  /** {@code CUBLAS_DEFAULT_MATH}: float32 math without tensor-core down-conversion. */
  public static final int DEFAULT_MATH = 0;

  /** {@code CUBLAS_TF32_TENSOR_OP_MATH}: float32 inputs rounded to TF32 on tensor cores. */
  public static final int TF32_TENSOR_OP_MATH = 3;

  /** The C functions, bound from one library file. */
  static final class Functions {
    final MethodHandle create;
    final MethodHandle destroy;
    final MethodHandle setStream;
    final MethodHandle setMathMode;
    final MethodHandle getStatusString;
    final MethodHandle getVersion;
    final MethodHandle sgemm;
    final MethodHandle sgemmStridedBatched;

    /** Binds every function, then throws naming all missing ones, if any. */
    Functions(NativeLibrary library) {
      create = library.function("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
      destroy = library.function("cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
      setStream =
          library.function("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
      setMathMode =
          library.function("cublasSetMathMode", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
      getStatusString =
          library.function("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
      getVersion =
          library.function(
              "cublasGetVersion_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
      // (handle, transa, transb, m, n, k, alpha*, A, lda, B, ldb, beta*, C, ldc)
      sgemm =
          library.function(
              "cublasSgemm_v2",
              FunctionDescriptor.of(
                  JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                  ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
      // As above, with a long long stride after each matrix's leading dimension and a batch count.
      sgemmStridedBatched =
          library.function(
              "cublasSgemmStridedBatched",
              FunctionDescriptor.of(
                  JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS,
                  ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS,
                  JAVA_INT, JAVA_LONG, JAVA_INT));
      library.requireAll();
    }
  }

  private final NativeLibrary library;
  private final Functions functions;
  private final VendorDevice device;
  private final MemorySegment handle;
  private final int version;
  private boolean closed;

  private CublasDirect(NativeLibrary library, Functions functions, VendorDevice device) {
    this.library = library;
    this.functions = functions;
    this.device = device;
    device.makeCurrent().run();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment slot = arena.allocate(ADDRESS);
      check(NativeLibrary.status(functions.create, slot), "cublasCreate_v2", "");
      this.handle = slot.get(ADDRESS, 0);
      try {
        MemorySegment versionSlot = arena.allocate(JAVA_INT);
        check(
            NativeLibrary.status(functions.getVersion, handle, versionSlot),
            "cublasGetVersion_v2",
            "");
        this.version = versionSlot.get(JAVA_INT, 0);
        MemorySegment stream = MemorySegment.ofAddress(device.stream());
        check(
            NativeLibrary.status(functions.setStream, handle, stream),
            "cublasSetStream_v2",
            "stream=0x" + Long.toHexString(device.stream()));
        setMathMode(DEFAULT_MATH);
      } catch (RuntimeException e) {
        // The handle is destroyed before the caller unloads the library.
        NativeLibrary.status(functions.destroy, handle);
        throw e;
      }
    }
  }

  /**
   * Loads cuBLAS from the best discovered file that has every function kiln binds, creates a handle
   * and binds it to the device's stream.
   *
   * @throws LibraryLoadException if no file loads with every function
   * @throws VendorException if creating or configuring the handle fails
   */
  public static CublasDirect load(DiscoveryResult found, VendorDevice device) {
    return NativeLibrary.open(
        found, library -> new CublasDirect(library, new Functions(library), device));
  }

  /**
   * Sets the math mode ({@code cublasSetMathMode}), such as {@link #TF32_TENSOR_OP_MATH} for
   * benchmarks that accept TF32's precision.
   */
  public synchronized void setMathMode(int mode) {
    check(
        NativeLibrary.status(functions.setMathMode, handle, mode),
        "cublasSetMathMode",
        "mode=" + mode);
  }

  @Override
  public String description() {
    return "cuBLAS "
        + versionText(version)
        + " through java.lang.foreign, from "
        + library.path()
        + passedOverText(library);
  }

  /**
   * Returns " (passed over: PATH REASON; ...)" for the files tried before {@code library}, or an
   * empty string where it was the best candidate.
   */
  static String passedOverText(NativeLibrary library) {
    if (library.passedOver().isEmpty()) {
      return "";
    }
    return " (passed over: " + String.join("; ", library.passedOver()) + ")";
  }

  @Override
  public synchronized void sgemm(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long b,
      int ldb,
      float beta,
      long c,
      int ldc) {
    device.makeCurrent().run();
    try (Arena arena = Arena.ofConfined()) {
      // The default pointer mode is host, so cuBLAS reads alpha and beta before it returns.
      MemorySegment alphaSlot = arena.allocateFrom(JAVA_FLOAT, alpha);
      MemorySegment betaSlot = arena.allocateFrom(JAVA_FLOAT, beta);
      int status =
          NativeLibrary.status(
              functions.sgemm,
              handle,
              operation(transposeA),
              operation(transposeB),
              m,
              n,
              k,
              alphaSlot,
              MemorySegment.ofAddress(a),
              lda,
              MemorySegment.ofAddress(b),
              ldb,
              betaSlot,
              MemorySegment.ofAddress(c),
              ldc);
      check(
          status, "cublasSgemm_v2", gemmArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc));
    }
  }

  @Override
  public synchronized void sgemmStridedBatched(
      boolean transposeA,
      boolean transposeB,
      int m,
      int n,
      int k,
      float alpha,
      long a,
      int lda,
      long strideA,
      long b,
      int ldb,
      long strideB,
      float beta,
      long c,
      int ldc,
      long strideC,
      int batchCount) {
    device.makeCurrent().run();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment alphaSlot = arena.allocateFrom(JAVA_FLOAT, alpha);
      MemorySegment betaSlot = arena.allocateFrom(JAVA_FLOAT, beta);
      int status =
          NativeLibrary.status(
              functions.sgemmStridedBatched,
              handle,
              operation(transposeA),
              operation(transposeB),
              m,
              n,
              k,
              alphaSlot,
              MemorySegment.ofAddress(a),
              lda,
              strideA,
              MemorySegment.ofAddress(b),
              ldb,
              strideB,
              betaSlot,
              MemorySegment.ofAddress(c),
              ldc,
              strideC,
              batchCount);
      check(
          status,
          "cublasSgemmStridedBatched",
          gemmArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc)
              + ", batchCount="
              + batchCount);
    }
  }

  /**
   * Formats a {@code cublasGetVersion} number, major * 10000 + minor * 100 + patch, as
   * major.minor.patch.
   */
  static String versionText(int version) {
    return version / 10000 + "." + version % 10000 / 100 + "." + version % 100;
  }

  /** Returns {@code CUBLAS_OP_T} (1) or {@code CUBLAS_OP_N} (0). */
  static int operation(boolean transpose) {
    return transpose ? 1 : 0;
  }

  static String gemmArguments(
      boolean transposeA, boolean transposeB, int m, int n, int k, int lda, int ldb, int ldc) {
    return String.format(
        "op(A)=%s, op(B)=%s, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d",
        transposeA ? "T" : "N", transposeB ? "T" : "N", m, n, k, lda, ldb, ldc);
  }

  /** Returns {@code cublasGetStatusString}'s text for a status. */
  String statusString(int status) {
    MemorySegment text = (MemorySegment) NativeLibrary.invoke(functions.getStatusString, status);
    return NativeLibrary.cString(text, 256);
  }

  private void check(int status, String call, String arguments) {
    if (status != 0) {
      throw new VendorException(
          call, status, StatusNames.cublas(status, this::statusString), arguments);
    }
  }

  /** Destroys the handle. The library stays loaded, because other handles may use it. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent().run();
    check(NativeLibrary.status(functions.destroy, handle), "cublasDestroy_v2", "");
  }
}
