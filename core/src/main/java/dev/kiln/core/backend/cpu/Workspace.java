package dev.kiln.core.backend.cpu;

import java.lang.ref.SoftReference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Per-thread scratch arrays that the CPU kernels reuse across calls instead of allocating them
 * anew: packing panels, column matrices and partial sums.
 *
 * <p>Each {@link Slot} has one array per thread, which grows to the largest size requested on that
 * thread. A caller owns the array of a slot until it requests the same slot again on the same
 * thread, so two buffers that are live at the same time must use different slots. Arrays are
 * returned with stale contents, so every user must overwrite what it reads. Reuse therefore never
 * changes a result.
 *
 * <p>A thread keeps its arrays between calls only through soft references. A service with many
 * threads would otherwise hold tens of MiB per thread that once ran a large convolution (a 224x224
 * im2col), for as long as the thread lives. When the heap runs short, the garbage collector clears
 * the arrays that no call is using before it would throw {@link OutOfMemoryError}, and the next
 * request allocates a new one.
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

  /** This thread's float arrays, one soft reference per slot, null where none was requested. */
  private static final ThreadLocal<List<SoftReference<float[]>>> FLOATS =
      ThreadLocal.withInitial(Workspace::emptySlots);

  /** This thread's double arrays, as {@link #FLOATS}. */
  private static final ThreadLocal<List<SoftReference<double[]>>> DOUBLES =
      ThreadLocal.withInitial(Workspace::emptySlots);

  private Workspace() {}

  private static <T> List<SoftReference<T>> emptySlots() {
    return new ArrayList<>(Collections.nCopies(SLOTS, null));
  }

  /** Returns this thread's float array of {@code slot}, with at least {@code size} elements. */
  static float[] floats(Slot slot, int size) {
    List<SoftReference<float[]>> arrays = FLOATS.get();
    SoftReference<float[]> reference = arrays.get(slot.ordinal());
    float[] array = reference == null ? null : reference.get();
    if (array == null || array.length < size) {
      array = new float[size];
      arrays.set(slot.ordinal(), new SoftReference<>(array));
    }
    return array;
  }

  /** Returns this thread's double array of {@code slot}, with at least {@code size} elements. */
  static double[] doubles(Slot slot, int size) {
    List<SoftReference<double[]>> arrays = DOUBLES.get();
    SoftReference<double[]> reference = arrays.get(slot.ordinal());
    double[] array = reference == null ? null : reference.get();
    if (array == null || array.length < size) {
      array = new double[size];
      arrays.set(slot.ordinal(), new SoftReference<>(array));
    }
    return array;
  }
}
