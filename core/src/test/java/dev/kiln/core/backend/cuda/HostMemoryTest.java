package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** Tests the emulated device's host memory, alone and under the caching allocator. */
class HostMemoryTest {

  @Test
  void blocksAreAlignedTo256Bytes() {
    HostMemory memory = new HostMemory(1 << 20);
    for (long size : new long[] {1, 3, 512, 1000, 4096}) {
      long address = memory.allocate(size);
      assertEquals(0, address % HostMemory.ALIGNMENT, "address of a " + size + "-byte block");
      memory.free(address, size);
    }
  }

  @Test
  void allocatorBlockHoldsWrittenFloats() {
    HostMemory memory = new HostMemory(1 << 24);
    CachingAllocator allocator = new CachingAllocator(memory);
    DeviceBuffer buffer = allocator.allocate(1000 * Float.BYTES);
    MemorySegment segment = memory.segment(buffer);

    for (int i = 0; i < 1000; i++) {
      segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, i * 0.5f);
    }
    MemorySegment again = memory.segment(buffer.address(), buffer.bytes());

    assertEquals(buffer.address(), segment.address());
    assertEquals(buffer.bytes(), segment.byteSize());
    assertEquals(0.0f, again.getAtIndex(ValueLayout.JAVA_FLOAT, 0));
    assertEquals(499.5f, again.getAtIndex(ValueLayout.JAVA_FLOAT, 999));
    allocator.free(buffer);
  }

  @Test
  void segmentInsideBlockIsSlice() {
    HostMemory memory = new HostMemory(1 << 20);
    long address = memory.allocate(4096);
    memory.segment(address, 4096).setAtIndex(ValueLayout.JAVA_INT, 10, 42);

    MemorySegment slice = memory.segment(address + 40, 8);

    assertEquals(42, slice.get(ValueLayout.JAVA_INT, 0));
    assertEquals(8, slice.byteSize());
    memory.free(address, 4096);
  }

  @Test
  void segmentPastBlockEndIsRejected() {
    HostMemory memory = new HostMemory(1 << 20);
    long address = memory.allocate(512);

    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> memory.segment(address + 256, 512));
    assertTrue(e.getMessage().contains("runs past its end"), e.getMessage());
    memory.free(address, 512);
  }

  @Test
  void freedBlockHasNoSegment() {
    HostMemory memory = new HostMemory(1 << 20);
    long address = memory.allocate(512);
    memory.free(address, 512);

    assertThrows(IllegalArgumentException.class, () -> memory.segment(address, 512));
  }

  @Test
  void capacityLimitsAllocation() {
    HostMemory memory = new HostMemory(4096);
    long first = memory.allocate(3000);

    assertEquals(0, memory.allocate(2000), "2000 more bytes exceed the 4096-byte capacity");
    assertEquals(new DeviceMemory.MemoryInfo(1096, 4096), memory.memoryInfo());
    memory.free(first, 3000);
    assertEquals(new DeviceMemory.MemoryInfo(4096, 4096), memory.memoryInfo());
  }

  @Test
  void emulatedOutOfMemoryNamesDevice() {
    CachingAllocator allocator = new CachingAllocator(new HostMemory(1 << 20));

    DeviceOutOfMemoryException e =
        assertThrows(DeviceOutOfMemoryException.class, () -> allocator.allocate(2 << 20));
    assertTrue(e.getMessage().startsWith("out of memory on emulated"), e.getMessage());
  }

  @Test
  void freeWithWrongSizeIsRejected() {
    HostMemory memory = new HostMemory(1 << 20);
    long address = memory.allocate(512);

    assertThrows(IllegalStateException.class, () -> memory.free(address, 1024));
    memory.free(address, 512);
  }
}
