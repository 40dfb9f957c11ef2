package dev.kiln.core.backend.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import org.junit.jupiter.api.Test;

/** The device's cache of shape arrays, on a private emulated runtime. */
class ConstantIntsTest {

  @Test
  void equalArraysShareOneUpload() {
    try (EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20)) {
      ConstantInts constants = runtime.constants();
      int[] shape = {2, 3, 4};
      DeviceBuffer first = constants.of(shape);
      shape[0] = 9;
      // The cache copied the array, so changing the caller's array changes nothing cached.
      DeviceBuffer again = constants.of(new int[] {2, 3, 4});
      assertSame(first, again);
      assertNotSame(first, constants.of(shape));

      int[] read = new int[3];
      runtime.copyToHost(first, read);
      assertArrayEquals(new int[] {2, 3, 4}, read);
      assertEquals(2 * CachingAllocator.sizeClass(3 * Integer.BYTES), constants.bytes());
      assertEquals(constants.bytes(), runtime.allocator().stats().bytesInUse());
    }
  }

  @Test
  void fullCacheStartsAgain() {
    try (EmulatedRuntime runtime = EmulatedRuntime.create(16 << 20)) {
      ConstantInts constants = runtime.constants();
      for (int i = 0; i < ConstantInts.MAX_ENTRIES; i++) {
        constants.of(new int[] {i});
      }
      long full = runtime.allocator().stats().bytesInUse();
      constants.of(new int[] {-1});
      assertEquals(full / ConstantInts.MAX_ENTRIES, runtime.allocator().stats().bytesInUse());
      assertEquals(constants.bytes(), runtime.allocator().stats().bytesInUse());
    }
  }

  @Test
  void closingTheRuntimeFreesTheCache() {
    EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20);
    runtime.constants().of(new int[] {1, 2});
    runtime.close();
    assertEquals(0, runtime.allocator().stats().bytesInUse());
    assertEquals(0, runtime.constants().bytes());
  }
}
