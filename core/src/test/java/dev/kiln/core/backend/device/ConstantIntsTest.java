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
  void fullGenerationIsFreedOnlyWhenTheNextOneRetires() {
    try (EmulatedRuntime runtime = EmulatedRuntime.create(16 << 20)) {
      ConstantInts constants = runtime.constants();
      DeviceBuffer oldest = constants.of(new int[] {0});
      for (int i = 1; i < ConstantInts.MAX_ENTRIES; i++) {
        constants.of(new int[] {i});
      }
      long generation = runtime.allocator().stats().bytesInUse();

      // The first generation retires but stays allocated, so a launcher that looked up one of its
      // buffers just before can still launch with it.
      DeviceBuffer next = constants.of(new int[] {-1});
      assertEquals(generation + generation / ConstantInts.MAX_ENTRIES, constants.bytes());
      int[] read = new int[1];
      runtime.copyToHost(oldest, read);
      assertEquals(0, read[0], "a retired buffer still holds its values");
      assertNotSame(oldest, constants.of(new int[] {0}), "a retired array is uploaded again");

      // Filling the second generation retires it and frees the first.
      for (int i = 2; i < ConstantInts.MAX_ENTRIES; i++) {
        constants.of(new int[] {-i});
      }
      constants.of(new int[] {Integer.MIN_VALUE});
      assertEquals(generation + generation / ConstantInts.MAX_ENTRIES, constants.bytes());
      assertEquals(constants.bytes(), runtime.allocator().stats().bytesInUse());
      runtime.copyToHost(next, read);
      assertEquals(-1, read[0], "the retired second generation is still allocated");
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
