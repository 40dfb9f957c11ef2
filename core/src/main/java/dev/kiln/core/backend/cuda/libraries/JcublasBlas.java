package dev.kiln.core.backend.cuda.libraries;

import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.runtime.cudaStream_t;

/**
 * cuBLAS through JCublas ({@code org.jcuda:jcublas}), whose JNI library links against {@code
 * libcublas.so.12}, so it loads only on CUDA 12 machines.
 *
 * <p>Loading is guarded by {@link #load}: the first touch of {@link JCublas2} loads the JNI
 * library, and where {@code libcublas.so.12} is missing that throws {@link UnsatisfiedLinkError}
 * from a static initializer. {@link VendorSelection} turns that into a reason instead of a crash.
 * The handle is bound to kiln's stream, and the math mode is plain float32, as in {@link
 * CublasDirect}.
 */
public final class JcublasBlas implements VendorBlas {

  private final VendorDevice device;
  private final cublasHandle handle = new cublasHandle();
  private final int version;
  private boolean closed;

  private JcublasBlas(VendorDevice device) {
    this.device = device;
    device.makeCurrent().run();
    // kiln checks every status itself, with messages that name the call.
    JCublas2.setExceptionsEnabled(false);
    check(JCublas2.cublasCreate(handle), "cublasCreate_v2", "");
    int[] versionSlot = new int[1];
    check(JCublas2.cublasGetVersion(handle, versionSlot), "cublasGetVersion_v2", "");
    this.version = versionSlot[0];
    check(
        JCublas2.cublasSetStream(handle, new cudaStream_t(device.jcudaStream())),
        "cublasSetStream_v2",
        "");
    check(
        JCublas2.cublasSetMathMode(handle, CublasDirect.DEFAULT_MATH),
        "cublasSetMathMode",
        "mode=CUBLAS_DEFAULT_MATH");
  }

  /**
   * Loads JCublas and creates a handle on the device's stream.
   *
   * @throws LibraryLoadException if JCublas's JNI library or {@code libcublas.so.12} cannot load
   * @throws VendorException if creating or configuring the handle fails
   */
  public static JcublasBlas load(VendorDevice device) {
    try {
      JCublas2.initialize();
    } catch (LinkageError e) {
      throw new LibraryLoadException(
          "JCublas 12.6 failed to load ("
              + JcudaLoadErrors.summarize(e)
              + "): it needs libcublas.so.12 from CUDA 12 on the library path");
    }
    return new JcublasBlas(device);
  }

  @Override
  public String description() {
    return "cuBLAS " + CublasDirect.versionText(version) + " through JCublas";
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
    int status =
        JCublas2.cublasSgemm(
            handle,
            CublasDirect.operation(transposeA),
            CublasDirect.operation(transposeB),
            m,
            n,
            k,
            Pointer.to(new float[] {alpha}),
            devicePointer(a),
            lda,
            devicePointer(b),
            ldb,
            Pointer.to(new float[] {beta}),
            devicePointer(c),
            ldc);
    check(
        status,
        "cublasSgemm_v2",
        CublasDirect.gemmArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc));
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
    int status =
        JCublas2.cublasSgemmStridedBatched(
            handle,
            CublasDirect.operation(transposeA),
            CublasDirect.operation(transposeB),
            m,
            n,
            k,
            Pointer.to(new float[] {alpha}),
            devicePointer(a),
            lda,
            strideA,
            devicePointer(b),
            ldb,
            strideB,
            Pointer.to(new float[] {beta}),
            devicePointer(c),
            ldc,
            strideC,
            batchCount);
    check(
        status,
        "cublasSgemmStridedBatched",
        CublasDirect.gemmArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc)
            + ", batchCount="
            + batchCount);
  }

  /**
   * Returns a JCuda pointer to a raw device address. JCuda's native code passes {@code
   * nativePointer + byteOffset} to the library, so a null pointer offset by the address stands for
   * the address.
   */
  static Pointer devicePointer(long address) {
    return new Pointer().withByteOffset(address);
  }

  private static void check(int status, String call, String arguments) {
    if (status != 0) {
      throw new VendorException(
          call, status, StatusNames.cublas(status, JCublas2::cublasGetStatusString), arguments);
    }
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    device.makeCurrent().run();
    check(JCublas2.cublasDestroy(handle), "cublasDestroy_v2", "");
  }
}
