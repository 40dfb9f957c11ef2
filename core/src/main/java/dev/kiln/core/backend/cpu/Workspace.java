package dev.kiln.core.backend.cpu;

/**
 * Per-thread scratch arrays that the CPU kernels reuse across calls instead of allocating them
 * anew: packing panels, column matrices and partial sums.
 *
 * <p>Each {@link Slot} has one array per thread, which grows to the largest size requested on that
 * thread and is then kept for the life of the thread. A caller owns the array of a slot until it
 * requests the same slot again on the same thread, so two buffers that are live at the same time
 * must use different slots. Arrays are returned with stale contents, so every user must overwrite
 * what it reads. Reuse therefore never changes a result.
 *
 * <p>NOTE: the arrays are never shrunk, so a thread that once ran a large convolution keeps its
 * buffers (tens of MiB for a 224x224 im2col) until the thread ends.
 */
final class Workspace {

  /** Independent buffers that may be live at the same time on one thread. */
  enum Slot {
    /** Packed A panels of {@link VectorGemm}. */
    GEMM_A,
    /** Packed B panels of {@link VectorGemm}. */
    GEMM_B,
    /** Spilled edge tile of the {@link VectorGemm} micro-kernel. */
    GEMM_TILE,
    /** One gathered column-matrix row of the implicit-GEMM convolution's panel packing. */
    PANEL_ROW,
    /** Column matrix of the im2col convolution, or one column block of it. */
    CONV_COLUMNS,
    /** Output-channel-major output or output gradient of the batched convolution. */
    CONV_PRODUCT,
    /** Partial weight-gradient sum of one chunk of images. */
    CONV_PARTIAL
  }

  private static final int SLOTS = Slot.values().length;

  private static final ThreadLocal<float[][]> FLOATS =
      ThreadLocal.withInitial(() -> new float[SLOTS][]);

  private static final ThreadLocal<double[][]> DOUBLES =
      ThreadLocal.withInitial(() -> new double[SLOTS][]);

  private Workspace() {}

  /** Returns this thread's float array of {@code slot}, with at least {@code size} elements. */
  static float[] floats(Slot slot, int size) {
    float[][] arrays = FLOATS.get();
    float[] array = arrays[slot.ordinal()];
    if (array == null || array.length < size) {
      array = new float[size];
      arrays[slot.ordinal()] = array;
    }
    return array;
  }

  /** Returns this thread's double array of {@code slot}, with at least {@code size} elements. */
  static double[] doubles(Slot slot, int size) {
    double[][] arrays = DOUBLES.get();
    double[] array = arrays[slot.ordinal()];
    if (array == null || array.length < size) {
      array = new double[size];
      arrays[slot.ordinal()] = array;
    }
    return array;
  }
}
