package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.ops.Pooling;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The argmax that max pooling saves for backward on the CPU. The memory scope of the forward pass
 * owns it, and the next scope reuses its array. A backward pass after the scope closed fails rather
 * than read an array that a later step has reused.
 */
class MaxPoolScopeTest {
  private static final int[] INPUT_SHAPE = {1, 4, 64, 64};
  private static final int[] OUTPUT_SHAPE = {1, 4, 32, 32};

  /**
   * Elements of the output and of its argmax, 4 planes of 32 x 32 windows: at least {@link
   * ArrayPool#MIN_LENGTH}, so the pool keeps their arrays.
   */
  private static final int OUTPUTS = 4 * 32 * 32;

  private static final int[] TWO_BY_TWO = {2, 2};
  private static final int[] NO_PADDING = {0, 0};

  /**
   * Returns an input that requires a gradient and that no scope owns, its maxima placed by shift.
   */
  private static Tensor input(int shift) {
    float[] values = new float[4 * 64 * 64];
    for (int i = 0; i < values.length; i++) {
      values[i] = (i * 7 + shift) % 13;
    }
    return Tensor.of(values, INPUT_SHAPE).requiresGrad(true);
  }

  /** Returns a gradient of ones for the pooled output, in an array that no scope owns. */
  private static Tensor onesForOutput() {
    float[] ones = new float[OUTPUTS];
    Arrays.fill(ones, 1f);
    return Tensor.of(ones, OUTPUT_SHAPE);
  }

  private static Tensor maxPool(Tensor x) {
    return Pooling.maxPool2d(x, TWO_BY_TWO, TWO_BY_TWO, NO_PADDING);
  }

  /** Closes an empty scope, which drops every array that earlier tests left in the pool. */
  private static void emptyPool() {
    try (var _ = MemoryScope.open()) {
      // Nothing is allocated, so the pool ends this round empty.
    }
  }

  @Test
  void scopeOwnsArgmax() {
    Tensor x = input(0);
    try (var scope = MemoryScope.open()) {
      Tensor out = maxPool(x);
      assertEquals(2, scope.ownedStorages(), "the output and its argmax");
      assertTrue(out.requiresGrad());
    }
  }

  @Test
  void nextScopeReusesArgmaxArray() {
    ArrayPool pool = ArrayPool.ofThisThread();
    Tensor x = input(0);
    emptyPool();
    try (var _ = MemoryScope.open()) {
      maxPool(x).backward(onesForOutput());
    }
    long heldAfterFirstStep = pool.heldElements()[0];
    x.zeroGrad();

    try (var _ = MemoryScope.open()) {
      Tensor out = maxPool(x);
      assertEquals(
          heldAfterFirstStep - 2L * OUTPUTS,
          pool.heldElements()[0],
          "the output and the argmax should both reuse an array of the first step");
      out.backward(onesForOutput());
    }
    assertEquals(heldAfterFirstStep, pool.heldElements()[0], "equal steps hold equal arrays");
  }

  @Test
  void backwardAfterScopeClosedThrows() {
    Tensor x = input(0);
    Tensor out;
    try (var _ = MemoryScope.open()) {
      out = MemoryScope.keep(maxPool(x));
    }

    IllegalStateException error =
        assertThrows(IllegalStateException.class, () -> out.backward(onesForOutput()));

    assertTrue(error.getMessage().startsWith("maxPool2d: the argmax"), error.getMessage());
    assertTrue(error.getMessage().contains("Run backward before"), error.getMessage());
    assertNull(x.grad(), "no gradient may reach the input");
  }

  @Test
  void backwardAfterArgmaxReusedThrows() {
    Tensor first = input(0);
    Tensor staleOut;
    try (var _ = MemoryScope.open()) {
      staleOut = MemoryScope.keep(maxPool(first));
      // The pool hands out the array released last first, so the next output takes this one and
      // the next argmax takes the array of the first argmax.
      Tensor.zeros(DType.FLOAT32, OUTPUTS);
    }

    try (var _ = MemoryScope.open()) {
      // A later step writes other valid positions into the array of the first argmax.
      maxPool(input(5));
      assertThrows(IllegalStateException.class, () -> staleOut.backward(onesForOutput()));
    }
    assertNull(first.grad(), "no gradient may reach the input");
  }
}
