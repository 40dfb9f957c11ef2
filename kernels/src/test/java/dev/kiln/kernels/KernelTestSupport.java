package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Native buffers, seeded random inputs and tolerance checks for the kernel tests.
 *
 * <p>An instance owns a confined {@link Arena}; create one per test and close it at the end, so
 * every buffer it made is freed:
 *
 * <pre>{@code
 * try (KernelTestSupport support = new KernelTestSupport()) {
 *   float[] x = support.randomFloats(1000);
 *   MemorySegment input = support.segmentOf(x);
 *   MemorySegment output = support.floats(1000);
 *   KernelTestSupport.kernels().launch(...);
 *   float[] y = KernelTestSupport.toFloats(output, 1000);
 * }
 * }</pre>
 */
public final class KernelTestSupport implements AutoCloseable {
  /** The seed of {@link #KernelTestSupport()}, so a failing input can be reproduced. */
  public static final long SEED = 20_261_204L;

  private static EmulatedKernels shared;

  private final Arena arena = Arena.ofConfined();
  private final Random random;

  /** Creates a support object whose random inputs start from {@link #SEED}. */
  public KernelTestSupport() {
    this(SEED);
  }

  /** Creates a support object whose random inputs start from {@code seed}. */
  public KernelTestSupport(long seed) {
    random = new Random(seed);
  }

  /** Returns the emulation library, loaded once for the whole test run. */
  public static synchronized EmulatedKernels kernels() {
    if (shared == null) {
      shared = EmulatedKernels.load();
    }
    return shared;
  }

  /** Returns the arena that owns this object's buffers. */
  public Arena arena() {
    return arena;
  }

  /** Copies {@code values} into a new native float buffer. */
  public MemorySegment segmentOf(float[] values) {
    return segmentOf(arena, values);
  }

  /** Copies {@code values} into a new native int buffer. */
  public MemorySegment segmentOf(int[] values) {
    return arena.allocateFrom(ValueLayout.JAVA_INT, values);
  }

  /** Copies {@code values} into a new float buffer in {@code arena}. */
  public static MemorySegment segmentOf(Arena arena, float[] values) {
    return arena.allocateFrom(ValueLayout.JAVA_FLOAT, values);
  }

  /** Returns a zero-filled native buffer of {@code count} floats. */
  public MemorySegment floats(int count) {
    return arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(1, count));
  }

  /** Returns a zero-filled native buffer of {@code count} ints. */
  public MemorySegment ints(int count) {
    return arena.allocate(ValueLayout.JAVA_INT, Math.max(1, count));
  }

  /** Returns a native buffer of {@code count} floats, every one equal to {@code value}. */
  public MemorySegment filled(int count, float value) {
    MemorySegment segment = floats(count);
    for (int i = 0; i < count; i++) {
      segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, value);
    }
    return segment;
  }

  /** Copies the first {@code count} floats of {@code segment} into a new array. */
  public static float[] toFloats(MemorySegment segment, int count) {
    return segment.asSlice(0, 4L * count).toArray(ValueLayout.JAVA_FLOAT);
  }

  /** Copies the first {@code count} ints of {@code segment} into a new array. */
  public static int[] toInts(MemorySegment segment, int count) {
    return segment.asSlice(0, 4L * count).toArray(ValueLayout.JAVA_INT);
  }

  /** Returns {@code count} floats drawn uniformly from [-1, 1). */
  public float[] randomFloats(int count) {
    return randomFloats(count, -1f, 1f);
  }

  /** Returns {@code count} floats drawn uniformly from [min, max). */
  public float[] randomFloats(int count, float min, float max) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = min + (max - min) * random.nextFloat();
    }
    return values;
  }

  /** Returns {@code count} floats from a normal distribution with mean 0 and deviation 1. */
  public float[] gaussianFloats(int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }

  /** Returns this object's random generator, for inputs the helpers above do not cover. */
  public Random random() {
    return random;
  }

  /**
   * Asserts that every {@code actual[i]} is within {@code absolute + relative * |expected[i]|} of
   * {@code expected[i]}, or equals it (infinities, NaN). The failure names the first index that is
   * not, its two values, and how many indices failed.
   */
  public static void assertClose(
      String description, double[] expected, float[] actual, double absolute, double relative) {
    if (expected.length != actual.length) {
      fail(description + ": expected " + expected.length + " values but got " + actual.length);
    }
    int failures = 0;
    int first = -1;
    for (int i = 0; i < expected.length; i++) {
      // Equal infinities and two NaNs match, because the difference below would be NaN for them.
      boolean same =
          actual[i] == expected[i] || (Double.isNaN(actual[i]) && Double.isNaN(expected[i]));
      double error = Math.abs(actual[i] - expected[i]);
      if (!same && !(error <= absolute + relative * Math.abs(expected[i]))) {
        failures++;
        first = first < 0 ? i : first;
      }
    }
    if (failures > 0) {
      fail(
          String.format(
              "%s: %d of %d values differ by more than %.3g + %.3g * |expected|; the first is at"
                  + " index %d: expected %.9g but got %.9g",
              description,
              failures,
              expected.length,
              absolute,
              relative,
              first,
              expected[first],
              actual[first]));
    }
  }

  /** Frees every buffer this object made. */
  @Override
  public void close() {
    arena.close();
  }
}
