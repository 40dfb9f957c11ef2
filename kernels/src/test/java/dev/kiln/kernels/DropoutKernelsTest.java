package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Runs the kernels of dropout.cu under CPU emulation. The mask must be the one that
 * java.util.SplittableRandom defines (dropout.cu reproduces that class's sequence), must not depend
 * on the launch shape, and must keep a fraction of elements close to 1 - p.
 */
class DropoutKernelsTest {

  /**
   * Number of standard errors allowed between a kept fraction and its expectation. A fair generator
   * exceeds 5 standard errors with probability about 6e-7 (normal approximation), so a failure
   * means a biased mask rather than bad luck.
   */
  private static final double STANDARD_ERRORS = 5;

  /** An odd element count, not a multiple of any block size used below. */
  private static final int N = 4099;

  private static final float P = 0.3f;
  private static final long SEED = 42;
  private static final long OFFSET = 1000;

  private static EmulatedKernels kernels;

  @BeforeAll
  static void loadKernels() {
    kernels = KernelTestSupport.kernels();
  }

  /** The scale and the drop decision are float operations, so kernel and Java agree exactly. */
  @Test
  void forwardMaskMatchesSplittableRandom() {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(N);
      float[] mask = expectedMask(N, P, SEED, OFFSET);
      float[] expectedY = new float[N];
      for (int i = 0; i < N; i++) {
        expectedY[i] = x[i] * mask[i];
      }
      MemorySegment y = support.filled(N, Float.NaN);
      MemorySegment maskSegment = support.filled(N, Float.NaN);

      forward(support, x, y, maskSegment, P, SEED, OFFSET, Dim3.of(33), Dim3.of(128));

      assertArrayEquals(mask, floats(maskSegment), "mask for seed 42, offset 1000");
      assertArrayEquals(expectedY, floats(y), "y = x * mask");
    }
  }

  @Test
  void forwardMaskIsSameForEveryLaunchShape() {
    // One block of one warp, a grid-stride grid, one thread per element, and a block size that is
    // not a multiple of 32.
    Dim3[][] shapes = {
      {Dim3.of(1), Dim3.of(32)},
      {Dim3.of(7), Dim3.of(64)},
      {Dim3.of(Dim3.blocksFor(N, 256)), Dim3.of(256)},
      {Dim3.of(5), Dim3.of(50)},
    };
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(N);
      float[] first = null;
      for (Dim3[] shape : shapes) {
        MemorySegment y = support.filled(N, Float.NaN);
        MemorySegment mask = support.filled(N, Float.NaN);

        forward(support, x, y, mask, P, SEED, OFFSET, shape[0], shape[1]);

        float[] masks = floats(mask);
        if (first == null) {
          first = masks;
        } else {
          assertArrayEquals(first, masks, "mask with grid " + shape[0] + ", block " + shape[1]);
        }
      }
    }
  }

  @Test
  void forwardMaskDiffersAcrossSeedsAndOffsets() {
    float[] bySeed1 = launchMask(P, 1, 0);
    float[] bySeed2 = launchMask(P, 2, 0);
    float[] byOffset = launchMask(P, 1, N);

    // Independent masks disagree on an element with probability 2 p (1 - p).
    double expected = 2 * P * (1 - P);
    assertFractionNear(expected, differences(bySeed1, bySeed2), "masks of seeds 1 and 2");
    assertFractionNear(expected, differences(bySeed1, byOffset), "masks of offsets 0 and N");
  }

  @Test
  void forwardKeepsFractionOneMinusP() {
    for (float p : new float[] {0.1f, 0.5f, 0.9f}) {
      float[] mask = launchMask(p, SEED, 0);
      int keptCount = 0;
      for (float value : mask) {
        if (value != 0) {
          keptCount++;
          assertEquals(1 / (1 - p), value, 0, "scale of a kept element for p = " + p);
        }
      }
      assertFractionNear(1 - p, (double) keptCount / N, "kept fraction for p = " + p);
    }
  }

  @Test
  void forwardWithExtremeProbabilities() {
    float[] keepAll = launchMask(0, SEED, 0);
    float[] dropAll = launchMask(1, SEED, 0);
    float[] ones = new float[N];
    Arrays.fill(ones, 1);

    assertArrayEquals(ones, keepAll, "mask for p = 0");
    assertArrayEquals(new float[N], dropAll, "mask for p = 1");
  }

  /** The backward kernel regenerates the mask from the seed, so it needs no saved mask. */
  @Test
  void backwardAppliesForwardMask() {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(N);
      float[] gradY = support.gaussianFloats(N);
      MemorySegment y = support.filled(N, Float.NaN);
      MemorySegment mask = support.filled(N, Float.NaN);
      MemorySegment gradX = support.filled(N, Float.NaN);
      forward(support, x, y, mask, P, SEED, OFFSET, Dim3.of(9), Dim3.of(96));

      // A different launch shape from the forward pass, as a caller may choose.
      kernels.launch(
          "kiln_dropout_backward",
          Dim3.of(3),
          Dim3.of(160),
          0,
          support.segmentOf(gradY),
          gradX,
          N,
          P,
          SEED,
          OFFSET);

      float[] masks = floats(mask);
      float[] expected = new float[N];
      for (int i = 0; i < N; i++) {
        expected[i] = gradY[i] * masks[i];
      }
      assertArrayEquals(expected, floats(gradX), "gradX = gradY * forward mask");
    }
  }

  /** Forward with a null mask pointer still applies the same mask to y. */
  @Test
  void forwardWithoutSavedMaskGivesSameOutput() {
    try (KernelTestSupport support = new KernelTestSupport()) {
      float[] x = support.gaussianFloats(N);
      MemorySegment saved = support.filled(N, Float.NaN);
      MemorySegment unsaved = support.filled(N, Float.NaN);
      MemorySegment mask = support.filled(N, Float.NaN);

      forward(support, x, saved, mask, P, SEED, OFFSET, Dim3.of(17), Dim3.of(256));
      forward(support, x, unsaved, MemorySegment.NULL, P, SEED, OFFSET, Dim3.of(17), Dim3.of(256));

      assertArrayEquals(floats(saved), floats(unsaved), "y with and without a saved mask");
    }
  }

  /**
   * Returns the mask dropout.cu defines: element i takes the (offset + i)-th nextLong() of a
   * SplittableRandom seeded with seed, keeps its top 24 bits as u in [0, 1), and is dropped when u
   * is below p.
   */
  private static float[] expectedMask(int n, float p, long seed, long offset) {
    SplittableRandom random = new SplittableRandom(seed);
    for (long skipped = 0; skipped < offset; skipped++) {
      random.nextLong();
    }
    float scale = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
    float[] mask = new float[n];
    for (int i = 0; i < n; i++) {
      float u = (random.nextLong() >>> 40) * 0x1.0p-24f;
      mask[i] = u < p ? 0.0f : scale;
    }
    return mask;
  }

  private static void forward(
      KernelTestSupport support,
      float[] x,
      MemorySegment y,
      MemorySegment mask,
      float p,
      long seed,
      long offset,
      Dim3 grid,
      Dim3 block) {
    kernels.launch(
        "kiln_dropout_forward", grid, block, 0, support.segmentOf(x), y, mask, N, p, seed, offset);
  }

  /** Runs the forward kernel on ones and returns the saved mask. */
  private static float[] launchMask(float p, long seed, long offset) {
    float[] ones = new float[N];
    Arrays.fill(ones, 1);
    try (KernelTestSupport support = new KernelTestSupport()) {
      MemorySegment mask = support.filled(N, Float.NaN);
      forward(
          support,
          ones,
          support.filled(N, Float.NaN),
          mask,
          p,
          seed,
          offset,
          Dim3.of(11),
          Dim3.of(128));
      return floats(mask);
    }
  }

  private static double differences(float[] first, float[] second) {
    int count = 0;
    for (int i = 0; i < first.length; i++) {
      if ((first[i] == 0) != (second[i] == 0)) {
        count++;
      }
    }
    return (double) count / first.length;
  }

  /** Asserts a fraction of N Bernoulli trials within STANDARD_ERRORS of its expectation. */
  private static void assertFractionNear(double expected, double actual, String description) {
    double standardError = Math.sqrt(expected * (1 - expected) / N);
    assertEquals(
        expected,
        actual,
        STANDARD_ERRORS * standardError,
        description + ": expected a fraction near " + expected + " over " + N + " elements");
  }

  /** Reads every float of a segment that a test allocated. */
  private static float[] floats(MemorySegment segment) {
    return KernelTestSupport.toFloats(segment, (int) (segment.byteSize() / Float.BYTES));
  }
}
