package dev.kiln.core.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * Copies between Java arrays, pinned host memory and device memory, ordered with the device's
 * stream.
 *
 * <h2>Synchronous copies from and to Java arrays</h2>
 *
 * <p>These wait for earlier work on the stream, copy, and return when the data has arrived, so a
 * caller may reuse the array or read the result at once. They take two paths:
 *
 * <ul>
 *   <li>Up to {@value #STAGING_THRESHOLD_BYTES} bytes, the driver copies straight from the array
 *       ({@code cuMemcpyHtoD}, {@code cuMemcpyDtoH}). The driver bounces pageable memory through a
 *       pinned buffer of its own, and at this size the fixed cost of the call, some microseconds,
 *       is most of the time anyway.
 *   <li>Larger copies go through a pinned staging buffer of {@value #STAGING_BYTES} bytes that this
 *       object allocates once and reuses: Java copies the array into it and the GPU's copy engine
 *       reads it by DMA on the stream ({@code cuMemcpyHtoDAsync}). DMA from pinned memory runs at
 *       the full bandwidth of the host link, while copies from pageable memory are commonly
 *       reported at about half of it, and the copy on the stream needs no device-wide
 *       synchronization.
 * </ul>
 *
 * <p>NOTE: the threshold and the staging size are estimates that were not measured on a GPU. Time
 * both paths on the target machine before tuning them. The staging path also does not yet overlap
 * the Java copy of one chunk with the DMA of the previous one, which two staging buffers would.
 *
 * <h2>Asynchronous copies</h2>
 *
 * <p>Copies from and to a {@link PinnedBuffer} are enqueued on the stream and return at once. The
 * caller must not touch the pinned memory until the stream has reached the copy, which it can learn
 * from {@link CudaContext#synchronize()} or an event recorded after the copy.
 */
public final class CudaCopies implements AutoCloseable {

  /** Largest synchronous copy, in bytes, that does not use the pinned staging buffer. */
  public static final long STAGING_THRESHOLD_BYTES = 256L << 10;

  /** Size of the pinned staging buffer, in bytes. Larger copies pass through it in chunks. */
  public static final int STAGING_BYTES = 8 << 20;

  /** The legacy default stream, which the synchronous driver copies use. */
  private static final CUstream LEGACY_STREAM = JCudaDriver.CU_STREAM_LEGACY;

  private final CudaContext context;
  private final ReentrantLock stagingLock = new ReentrantLock();
  private PinnedBuffer staging;

  /** Creates the copies of one device. The staging buffer is allocated on first use. */
  CudaCopies(CudaContext context) {
    this.context = context;
  }

  /** Copies {@code count} floats from {@code src[srcIndex]} to {@code dst} at byte offset. */
  public void toDevice(float[] src, int srcIndex, DeviceBuffer dst, long dstOffset, int count) {
    Objects.checkFromIndexSize(srcIndex, count, src.length);
    MemorySegment host = MemorySegment.ofArray(src).asSlice(srcIndex * 4L, count * 4L);
    toDevice(Pointer.to(src).withByteOffset(srcIndex * 4L), host, dst, dstOffset);
  }

  /** Copies {@code count} doubles from {@code src[srcIndex]} to {@code dst} at byte offset. */
  public void toDevice(double[] src, int srcIndex, DeviceBuffer dst, long dstOffset, int count) {
    Objects.checkFromIndexSize(srcIndex, count, src.length);
    MemorySegment host = MemorySegment.ofArray(src).asSlice(srcIndex * 8L, count * 8L);
    toDevice(Pointer.to(src).withByteOffset(srcIndex * 8L), host, dst, dstOffset);
  }

  /** Copies {@code count} floats from {@code src} at byte offset into {@code dst[dstIndex]}. */
  public void toHost(DeviceBuffer src, long srcOffset, float[] dst, int dstIndex, int count) {
    Objects.checkFromIndexSize(dstIndex, count, dst.length);
    MemorySegment host = MemorySegment.ofArray(dst).asSlice(dstIndex * 4L, count * 4L);
    toHost(src, srcOffset, Pointer.to(dst).withByteOffset(dstIndex * 4L), host);
  }

  /** Copies {@code count} doubles from {@code src} at byte offset into {@code dst[dstIndex]}. */
  public void toHost(DeviceBuffer src, long srcOffset, double[] dst, int dstIndex, int count) {
    Objects.checkFromIndexSize(dstIndex, count, dst.length);
    MemorySegment host = MemorySegment.ofArray(dst).asSlice(dstIndex * 8L, count * 8L);
    toHost(src, srcOffset, Pointer.to(dst).withByteOffset(dstIndex * 8L), host);
  }

  private void toDevice(Pointer array, MemorySegment host, DeviceBuffer dst, long dstOffset) {
    long bytes = host.byteSize();
    checkDeviceRange(dst, dstOffset, bytes);
    context.makeCurrent();
    if (bytes <= STAGING_THRESHOLD_BYTES) {
      // Earlier kernels on the stream may still read the destination. The synchronous copy runs
      // on the legacy stream, which does not wait for kiln's non-blocking stream.
      context.synchronize();
      CudaException.check(
          JCudaDriver.cuMemcpyHtoD(new RawDevicePointer(dst.address() + dstOffset), array, bytes),
          "cuMemcpyHtoD",
          copyArguments(dst, dstOffset, bytes));
      // From pageable memory the call may return before the DMA has finished.
      synchronizeLegacyStream();
      return;
    }

    stagingLock.lock();
    try {
      PinnedBuffer buffer = staging();
      for (long done = 0; done < bytes; done += STAGING_BYTES) {
        long chunk = Math.min(STAGING_BYTES, bytes - done);
        MemorySegment.copy(host, done, buffer.segment(), 0, chunk);
        toDeviceAsync(buffer, 0, dst, dstOffset + done, chunk);
        // The staging buffer is refilled only after the copy engine has read it.
        context.synchronize();
      }
    } finally {
      stagingLock.unlock();
    }
  }

  private void toHost(DeviceBuffer src, long srcOffset, Pointer array, MemorySegment host) {
    long bytes = host.byteSize();
    checkDeviceRange(src, srcOffset, bytes);
    context.makeCurrent();
    if (bytes <= STAGING_THRESHOLD_BYTES) {
      // The copy must start after the kernels on the stream that write the source.
      context.synchronize();
      CudaException.check(
          JCudaDriver.cuMemcpyDtoH(array, new RawDevicePointer(src.address() + srcOffset), bytes),
          "cuMemcpyDtoH",
          copyArguments(src, srcOffset, bytes));
      return;
    }

    stagingLock.lock();
    try {
      PinnedBuffer buffer = staging();
      for (long done = 0; done < bytes; done += STAGING_BYTES) {
        long chunk = Math.min(STAGING_BYTES, bytes - done);
        toHostAsync(src, srcOffset + done, buffer, 0, chunk);
        context.synchronize();
        MemorySegment.copy(buffer.segment(), 0, host, done, chunk);
      }
    } finally {
      stagingLock.unlock();
    }
  }

  /**
   * Enqueues a copy of {@code bytes} bytes from pinned memory to the device on the stream ({@code
   * cuMemcpyHtoDAsync}) and returns at once.
   */
  public void toDeviceAsync(
      PinnedBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long bytes) {
    Objects.checkFromIndexSize(srcOffset, bytes, src.bytes());
    checkDeviceRange(dst, dstOffset, bytes);
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuMemcpyHtoDAsync(
            new RawDevicePointer(dst.address() + dstOffset),
            src.pointer(srcOffset),
            bytes,
            context.stream()),
        "cuMemcpyHtoDAsync",
        copyArguments(dst, dstOffset, bytes));
  }

  /**
   * Enqueues a copy of {@code bytes} bytes from the device to pinned memory on the stream ({@code
   * cuMemcpyDtoHAsync}) and returns at once.
   */
  public void toHostAsync(
      DeviceBuffer src, long srcOffset, PinnedBuffer dst, long dstOffset, long bytes) {
    Objects.checkFromIndexSize(dstOffset, bytes, dst.bytes());
    checkDeviceRange(src, srcOffset, bytes);
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuMemcpyDtoHAsync(
            dst.pointer(dstOffset),
            new RawDevicePointer(src.address() + srcOffset),
            bytes,
            context.stream()),
        "cuMemcpyDtoHAsync",
        copyArguments(src, srcOffset, bytes));
  }

  /** Enqueues a copy between two device buffers on the stream ({@code cuMemcpyDtoDAsync}). */
  public void deviceToDevice(
      DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long bytes) {
    checkDeviceRange(src, srcOffset, bytes);
    checkDeviceRange(dst, dstOffset, bytes);
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuMemcpyDtoDAsync(
            new RawDevicePointer(dst.address() + dstOffset),
            new RawDevicePointer(src.address() + srcOffset),
            bytes,
            context.stream()),
        "cuMemcpyDtoDAsync",
        copyArguments(src, srcOffset, bytes) + ", destination=" + dst.hexAddress());
  }

  private PinnedBuffer staging() {
    if (staging == null) {
      staging = new PinnedBuffer(context, STAGING_BYTES);
    }
    return staging;
  }

  private void synchronizeLegacyStream() {
    CudaException.check(
        JCudaDriver.cuStreamSynchronize(LEGACY_STREAM),
        "cuStreamSynchronize",
        "stream=CU_STREAM_LEGACY, device=" + context);
  }

  private static void checkDeviceRange(DeviceBuffer buffer, long offset, long bytes) {
    if (offset < 0 || bytes < 0 || offset > buffer.bytes() - bytes) {
      throw new IndexOutOfBoundsException(
          String.format(
              "copy of %d bytes at offset %d does not fit device buffer %s of %d bytes",
              bytes, offset, buffer.hexAddress(), buffer.bytes()));
    }
  }

  private String copyArguments(DeviceBuffer buffer, long offset, long bytes) {
    return String.format(
        "device buffer=%s, offset=%d, bytes=%d, device=%s",
        buffer.hexAddress(), offset, bytes, context);
  }

  /** Frees the pinned staging buffer, if one was allocated. */
  @Override
  public void close() {
    stagingLock.lock();
    try {
      if (staging != null) {
        staging.close();
        staging = null;
      }
    } finally {
      stagingLock.unlock();
    }
  }
}
