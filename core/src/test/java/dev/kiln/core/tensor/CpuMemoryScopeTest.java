package dev.kiln.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@link MemoryScope} on the CPU: released tensors fail loudly, their arrays come back through the
 * thread's {@link ArrayPool}, and the caller's own arrays are never taken.
 */
class CpuMemoryScopeTest {
  /** Long enough to be pooled. */
  private static final int LENGTH = ArrayPool.MIN_LENGTH * 2;

  private static Tensor filled(float value) {
    float[] values = new float[LENGTH];
    Arrays.fill(values, value);
    return Tensor.of(values, LENGTH);
  }

  private static void collectGarbage() {
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
  }

  @Test
  void closeReleasesCpuTensors() {
    Tensor input = filled(2);
    Tensor doubled;
    try (var scope = MemoryScope.open()) {
      doubled = input.mul(2);
      assertEquals(4.0, doubled.get(0));
      assertEquals(1, scope.ownedStorages(), "the result of mul, not the caller's input");
    }
    assertTrue(doubled.isReleased());
    IllegalStateException e = assertThrows(IllegalStateException.class, doubled::toFloatArray);
    assertTrue(e.getMessage().contains("memory scope"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> doubled.storage().floats());
    assertEquals(2.0, input.get(LENGTH - 1), "the caller's array stays usable");
  }

  @Test
  void nextScopeReusesZeroedArray() {
    float[] first;
    try (var _ = MemoryScope.open()) {
      first = filled(3).mul(1).storage().floats();
    }
    try (var _ = MemoryScope.open()) {
      Tensor zeros = Tensor.zeros(DType.FLOAT32, LENGTH);
      assertSame(first, zeros.storage().floats());
      assertEquals(0.0, zeros.toFloatArray()[LENGTH - 1], "a reused array is cleared");
    }
  }

  @Test
  void keptTensorSurvivesUnpooled() {
    Tensor survivor;
    try (var _ = MemoryScope.open()) {
      survivor = MemoryScope.keep(filled(5).mul(1));
    }
    try (var _ = MemoryScope.open()) {
      assertNotSame(
          survivor.storage().floats(), Tensor.zeros(DType.FLOAT32, LENGTH).storage().floats());
    }
    assertEquals(5.0, survivor.get(LENGTH - 1));
  }

  @Test
  void wrappedArrayNeverPooled() {
    float[] mine = new float[LENGTH];
    Tensor wrapped = Tensor.of(mine, LENGTH);
    wrapped.storage().release();
    try (var _ = MemoryScope.open()) {
      assertNotSame(mine, Tensor.zeros(DType.FLOAT32, LENGTH).storage().floats());
    }
  }

  @Test
  void unusedRoundDropsArrays() {
    ArrayPool pool = ArrayPool.ofThisThread();
    try (var _ = MemoryScope.open()) {
      filled(1).mul(1);
    }
    assertEquals(LENGTH, pool.heldElements()[0]);
    try (var _ = MemoryScope.open()) {
      Tensor.zeros(DType.FLOAT32, LENGTH + 1);
    }
    // The array of LENGTH waited through the second scope untaken; the new one is held instead.
    assertEquals(LENGTH + 1, pool.heldElements()[0]);
  }

  @Test
  void smallTensorReleasedNotPooled() {
    Tensor small;
    try (var scope = MemoryScope.open()) {
      small = Tensor.of(new float[] {1, 2}, 2).mul(2);
      assertEquals(1, scope.ownedStorages());
      assertArrayEquals(new float[] {2, 4}, small.toFloatArray());
    }
    assertTrue(small.isReleased());
    ArrayPool pool = ArrayPool.ofThisThread();
    long before = pool.heldElements()[0];
    pool.give(new float[ArrayPool.MIN_LENGTH - 1]);
    assertEquals(before, pool.heldElements()[0]);
  }

  @Test
  void deadTensorArrayIsPooled() {
    ArrayPool pool = ArrayPool.ofThisThread();
    try (var _ = MemoryScope.open()) {
      filled(7).mul(1); // unreachable at once
      collectGarbage();
    }
    assertEquals(LENGTH, pool.heldElements()[0]);
  }

  @Test
  void backwardReleaseNotPooledTwice() {
    Tensor x = filled(0.5f).requiresGrad(true);
    try (var _ = MemoryScope.open()) {
      // Backward releases the gradients it has used at once; the scope must not give them again.
      x.mul(2).add(1).mul(x).exp().mul(3).sum().backward();
      collectGarbage(); // so that the released gradients are unreachable when the scope closes
    }
    x.zeroGrad();
    try (var _ = MemoryScope.open()) {
      Set<float[]> arrays = Collections.newSetFromMap(new IdentityHashMap<>());
      for (int i = 0; i < 16; i++) {
        assertTrue(arrays.add(Tensor.zeros(DType.FLOAT32, LENGTH).storage().floats()));
      }
    }
  }

  @Test
  void releasedTensorIsNotKept() {
    Tensor inside;
    try (var _ = MemoryScope.open()) {
      inside = filled(1).mul(1);
      assertFalse(MemoryScope.isKept(inside));
    }
    assertFalse(MemoryScope.isKept(inside));
  }
}
