package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.kernels.Dim3;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Tests the context, kernel launch, events and the allocator on a real GPU. Every test is skipped,
 * with the availability check's reason, where {@code cuda:0} is not usable.
 */
class CudaContextGpuTest {

  private CudaContext context;
  private CudaModule kernels;

  @BeforeEach
  void openDevice() {
    context = GpuTestSupport.contextOrSkip();
    kernels = GpuTestSupport.testKernelsOrSkip();
  }

  @Test
  void contextIsSharedPerDevice() {
    assertSame(context, CudaContext.of(0));
    assertEquals(0, context.deviceIndex());
  }

  @Test
  void multiprocessorsAreTheDriversCount() {
    assertTrue(context.multiprocessors() >= 1, context.multiprocessors() + " multiprocessors");
    assertEquals(CudaDriver.multiprocessorCount(0), context.multiprocessors());
  }

  @Test
  void scaleAddKernelComputesOnDevice() {
    int n = 100_003; // not a multiple of the block size, so the bounds check matters
    float[] x = new float[n];
    float[] y = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = i * 0.25f;
      y[i] = 1.0f - i;
    }
    CachingAllocator allocator = context.allocator();
    DeviceBuffer xDevice = allocator.allocate(n * 4L);
    DeviceBuffer yDevice = allocator.allocate(n * 4L);
    context.copies().toDevice(x, 0, xDevice, 0, n);
    context.copies().toDevice(y, 0, yDevice, 0, n);

    int block = 256;
    kernels.launch(
        "scale_add",
        Dim3.of((n + block - 1) / block),
        Dim3.of(block),
        0,
        yDevice,
        xDevice,
        3.0f,
        n);
    float[] result = new float[n];
    context.copies().toHost(yDevice, 0, result, 0, n);

    float[] expected = new float[n];
    for (int i = 0; i < n; i++) {
      expected[i] = Math.fma(3.0f, x[i], y[i]);
    }
    assertArrayEquals(expected, result);
    allocator.free(xDevice);
    allocator.free(yDevice);
  }

  @Test
  void eventsTimeKernel() {
    int n = 1 << 20;
    DeviceBuffer x = context.allocator().allocate(n * 4L);
    DeviceBuffer y = context.allocator().allocate(n * 4L);

    try (CudaEvent start = context.recordEvent()) {
      kernels.launch("scale_add", Dim3.of(n / 256), Dim3.of(256), 0, y, x, 1.0f, n);
      try (CudaEvent end = context.recordEvent()) {
        float millis = start.elapsedMillis(end);
        assertTrue(millis >= 0, "kernel time " + millis + " ms");
        assertTrue(millis < 1000, "kernel time " + millis + " ms");
        assertTrue(end.isComplete());
      }
    }
    context.allocator().free(x);
    context.allocator().free(y);
  }

  @Test
  void unknownKernelIsRejected() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> kernels.launch("no_such_kernel", Dim3.of(1), Dim3.of(1), 0));
    assertTrue(e.getMessage().contains("'no_such_kernel'"), e.getMessage());
  }

  @Test
  void wrongArgumentTypeIsRejected() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> kernels.launch("scale_add", Dim3.of(1), Dim3.of(1), 0, "y", "x", 1.0f, 1));
    assertTrue(e.getMessage().contains("argument 0"), e.getMessage());
    assertTrue(e.getMessage().contains("java.lang.String"), e.getMessage());
  }

  @Test
  void allocatorReusesDeviceBlocks() {
    CachingAllocator allocator = context.allocator();
    DeviceBuffer first = allocator.allocate(3000);
    allocator.free(first);
    long hits = allocator.stats().cacheHits();

    DeviceBuffer second = allocator.allocate(2900);

    assertEquals(first.address(), second.address());
    assertEquals(hits + 1, allocator.stats().cacheHits());
    assertEquals(0, second.address() % 256, "cuMemAlloc aligns to 256 bytes");
    allocator.free(second);
  }

  @Test
  void deviceOutOfMemoryReportsAndRecovers() {
    CachingAllocator allocator = context.allocator();
    DeviceMemory.MemoryInfo info = allocator.memory().memoryInfo();
    assertTrue(info.totalBytes() > 0, "cuMemGetInfo reported no memory");

    DeviceOutOfMemoryException e =
        assertThrows(
            DeviceOutOfMemoryException.class, () -> allocator.allocate(info.totalBytes() * 2));
    assertTrue(e.getMessage().startsWith("out of memory on cuda:0"), e.getMessage());

    DeviceBuffer after = allocator.allocate(1 << 20);
    allocator.free(after);
  }

  @Test
  void modulesLoadedUnderOtherNamesKeepTheirKernels() {
    byte[] fatbin = CudaAvailability.readFatbin();
    assumeTrue(fatbin != null, "the kernels module's fatbin is not on the test class path");
    CudaModule kiln = context.module("kiln kernels", fatbin);
    assertSame(kiln, context.module("kiln kernels", fatbin), "a name loads its module once");

    // The test kernel's module is still loaded next to kiln's, so its kernel still launches.
    int n = 256;
    DeviceBuffer x = context.allocator().allocate(n * 4L);
    DeviceBuffer y = context.allocator().allocate(n * 4L);
    try {
      float[] ones = new float[n];
      Arrays.fill(ones, 1f);
      context.copies().toDevice(ones, 0, x, 0, n);
      context.copies().toDevice(ones, 0, y, 0, n);
      kernels.launch("scale_add", Dim3.of(1), Dim3.of(n), 0, y, x, 2.0f, n);
      float[] result = new float[n];
      context.copies().toHost(y, 0, result, 0, n);
      assertEquals(3f, result[n - 1]);
    } finally {
      context.allocator().free(x);
      context.allocator().free(y);
    }
  }

  @Test
  void fatbinFromKernelsJarLoads() {
    byte[] fatbin = CudaAvailability.readFatbin();
    assumeTrue(fatbin != null, "the kernels module's fatbin is not on the test class path");

    try (CudaModule module = new CudaModule(context, fatbin)) {
      assertTrue(fatbin.length > 0);
    }
  }
}
