package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Tests host-device copies on a real GPU, on both the direct and the staged path. Skipped, with the
 * availability check's reason, where {@code cuda:0} is not usable.
 */
class CudaCopiesGpuTest {

  private CudaContext context;

  @BeforeEach
  void openDevice() {
    context = GpuTestSupport.contextOrSkip();
  }

  private static float[] ramp(int n, float scale) {
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = i * scale;
    }
    return values;
  }

  @Test
  void smallFloatsRoundTrip() {
    float[] source = ramp(1000, 0.5f);
    DeviceBuffer buffer = context.allocator().allocate(4000);

    context.copies().toDevice(source, 0, buffer, 0, 1000);
    float[] back = new float[1000];
    context.copies().toHost(buffer, 0, back, 0, 1000);

    assertArrayEquals(source, back);
    context.allocator().free(buffer);
  }

  @Test
  void largeFloatsRoundTripThroughStaging() {
    // 3 million floats are 12 MB: above the threshold, and two staging chunks.
    int n = 3_000_000;
    float[] source = ramp(n, 1e-3f);
    DeviceBuffer buffer = context.allocator().allocate(n * 4L);

    context.copies().toDevice(source, 0, buffer, 0, n);
    float[] back = new float[n];
    context.copies().toHost(buffer, 0, back, 0, n);

    assertArrayEquals(source, back);
    context.allocator().free(buffer);
  }

  @Test
  void offsetsApplyOnBothSides() {
    float[] source = ramp(100, 1f);
    DeviceBuffer buffer = context.allocator().allocate(400);

    // Elements 10..29 of the source land at device bytes 40..119.
    context.copies().toDevice(source, 10, buffer, 40, 20);
    float[] back = new float[30];
    context.copies().toHost(buffer, 40, back, 5, 20);

    for (int i = 0; i < 20; i++) {
      assertEquals(source[10 + i], back[5 + i], "element " + i);
    }
    assertEquals(0f, back[4]);
    context.allocator().free(buffer);
  }

  @Test
  void doublesRoundTrip() {
    int n = 100_000; // 800 kB, above the staging threshold
    double[] source = new double[n];
    for (int i = 0; i < n; i++) {
      source[i] = Math.sqrt(i);
    }
    DeviceBuffer buffer = context.allocator().allocate(n * 8L);

    context.copies().toDevice(source, 0, buffer, 0, n);
    double[] back = new double[n];
    context.copies().toHost(buffer, 0, back, 0, n);

    assertArrayEquals(source, back);
    context.allocator().free(buffer);
  }

  @Test
  void pinnedAsyncCopiesRoundTrip() {
    int n = 4096;
    DeviceBuffer first = context.allocator().allocate(n * 4L);
    DeviceBuffer second = context.allocator().allocate(n * 4L);
    try (PinnedBuffer in = new PinnedBuffer(context, n * 4L);
        PinnedBuffer out = new PinnedBuffer(context, n * 4L)) {
      for (int i = 0; i < n; i++) {
        in.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 0.5f);
      }

      context.copies().toDeviceAsync(in, 0, first, 0, n * 4L);
      context.copies().deviceToDevice(first, 0, second, 0, n * 4L);
      context.copies().toHostAsync(second, 0, out, 0, n * 4L);
      context.synchronize();

      for (int i = 0; i < n; i += 511) {
        assertEquals(i + 0.5f, out.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i), "index " + i);
      }
    }
    context.allocator().free(first);
    context.allocator().free(second);
  }

  @Test
  void copyPastBufferEndIsRejected() {
    DeviceBuffer buffer = context.allocator().allocate(512);

    assertThrows(
        IndexOutOfBoundsException.class,
        () -> context.copies().toDevice(new float[200], 0, buffer, 0, 200));
    context.allocator().free(buffer);
  }
}
