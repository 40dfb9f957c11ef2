package dev.kiln.core.backend.cuda;

import java.lang.foreign.MemorySegment;
import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

/**
 * Page-locked ("pinned") host memory from {@code cuMemAllocHost}.
 *
 * <p>The GPU's copy engines read and write pinned memory directly by DMA. A copy from ordinary,
 * pageable memory makes the driver first copy the data into a pinned buffer of its own, and an
 * asynchronous copy needs pinned memory to be asynchronous at all. Pinning is expensive (it locks
 * pages in the operating system), so kiln allocates one pinned buffer per device, the staging
 * buffer of {@link CudaCopies}, and reuses it.
 *
 * <p>The memory is visible to Java as a {@link MemorySegment}. A buffer is smaller than 2 GiB,
 * because JCuda exposes it through a {@link java.nio.ByteBuffer}.
 */
public final class PinnedBuffer implements AutoCloseable {

  private final CudaContext context;
  private final Pointer pointer = new Pointer();
  private final MemorySegment segment;
  private boolean closed;

  /**
   * Allocates {@code bytes} bytes of pinned memory ({@code cuMemAllocHost}).
   *
   * @param context the context whose device uses the memory
   * @param bytes the size, from 1 to {@link Integer#MAX_VALUE}
   */
  public PinnedBuffer(CudaContext context, long bytes) {
    if (bytes < 1 || bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "pinned buffer size must be from 1 to " + Integer.MAX_VALUE + " bytes, got " + bytes);
    }
    this.context = context;
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuMemAllocHost(pointer, bytes), "cuMemAllocHost", "bytes=" + bytes);
    this.segment = MemorySegment.ofBuffer(pointer.getByteBuffer(0, bytes));
  }

  /** Returns the memory as a segment, for filling and reading from Java. */
  public MemorySegment segment() {
    return segment;
  }

  /** Returns the size in bytes. */
  public long bytes() {
    return segment.byteSize();
  }

  /** Returns a JCuda pointer {@code offset} bytes into the buffer, for driver calls. */
  Pointer pointer(long offset) {
    return pointer.withByteOffset(offset);
  }

  /** Frees the memory ({@code cuMemFreeHost}). A second call does nothing. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    context.makeCurrent();
    CudaException.check(JCudaDriver.cuMemFreeHost(pointer), "cuMemFreeHost", "");
  }
}
