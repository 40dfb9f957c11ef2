package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;

/**
 * The services that the device launchers ({@link DeviceElementwise}, {@link DeviceConv} and the
 * others) need from a device: memory, copies between Java arrays and that memory, kernel launches
 * by name, and a way to wait for the work to finish.
 *
 * <p>Two implementations exist. {@link CudaRuntime} runs kiln's kernels on an NVIDIA GPU through
 * the CUDA driver. {@link EmulatedRuntime} runs the same kernel sources, compiled for the CPU, on
 * native host memory, so every launcher can be tested on a machine without a GPU. A launcher runs
 * unchanged on either.
 *
 * <h2>Ordering</h2>
 *
 * <p>Work is issued in program order and runs in that order: on a GPU all launches and copies go to
 * one stream, and the emulator runs each launch to completion before it returns. A launcher may
 * therefore free a temporary buffer right after the launch that reads it: the allocator hands the
 * block out again only to work issued later, which runs after that launch.
 *
 * <h2>Pointer arguments</h2>
 *
 * <p>{@link #launch} takes a {@link DeviceBuffer} for each pointer parameter of the kernel. Where
 * the kernel reads a null pointer as an absent input (a bias, gamma, beta, dropout mask or momentum
 * buffer), the launcher passes {@code Optional.ofNullable(buffer)} instead, and an empty {@link
 * java.util.Optional} reaches the kernel as the null pointer. A bare {@code null} is rejected with
 * an {@link IllegalArgumentException} before the launch, because every other pointer is
 * dereferenced without a test. A buffer made by {@link #slice} points into the middle of another
 * buffer, which is how {@link DeviceConv} hands one group of a batch's images to a kernel.
 */
public interface DeviceRuntime extends AutoCloseable {

  /** Returns the device's name, {@code cuda:N} or {@code emulated}. */
  String name();

  /**
   * Returns the device's number of streaming multiprocessors. A launcher sizes a grid from it where
   * the number of blocks decides how evenly the work fills the device, as the matrix products do.
   */
  int multiprocessors();

  /** Returns the caching allocator that manages this device's memory. */
  CachingAllocator allocator();

  /** Returns this device's cache of small int arrays that kernels read, such as shapes. */
  ConstantInts constants();

  /** Returns the counters of the work that this runtime has issued since it opened. */
  DeviceCounters counters();

  /**
   * Returns a snapshot of the work that this device has done since its runtime opened: launches,
   * copies, synchronizations, library calls and allocations. Subtract an earlier snapshot with
   * {@link DeviceWork#minus} to get the work in between.
   */
  default DeviceWork work() {
    return counters().snapshot(allocator().stats());
  }

  /**
   * Allocates room for {@code count} floats (or ints, which have the same size).
   *
   * @throws dev.kiln.core.backend.cuda.DeviceOutOfMemoryException if the device is full
   */
  default DeviceBuffer allocateFloats(long count) {
    return allocator().allocate(count * Float.BYTES);
  }

  /** Returns a buffer to the allocator's cache. Never pass a {@link #slice} here. */
  default void free(DeviceBuffer buffer) {
    allocator().free(buffer);
  }

  /**
   * Copies {@code count} floats from {@code src[srcIndex]} to the device, at float index {@code
   * dstIndex} of {@code dst}.
   *
   * @throws IndexOutOfBoundsException if either range runs past its array or buffer, naming the
   *     buffer, its size, and the index and count
   */
  void copyToDevice(float[] src, int srcIndex, DeviceBuffer dst, long dstIndex, int count);

  /**
   * Copies {@code count} floats from float index {@code srcIndex} of {@code src} into {@code
   * dst[dstIndex]}. Waits for all work issued before, so the floats are final.
   *
   * @throws IndexOutOfBoundsException if either range runs past its buffer or array, naming the
   *     buffer, its size, and the index and count
   */
  void copyToHost(DeviceBuffer src, long srcIndex, float[] dst, int dstIndex, int count);

  /**
   * Copies {@code count} floats from float index {@code srcIndex} of {@code src} to float index
   * {@code dstIndex} of {@code dst}, both on this device. The copy is ordered with the launches, so
   * it sees what earlier work wrote. The two ranges must not overlap.
   */
  void copyWithinDevice(
      DeviceBuffer src, long srcIndex, DeviceBuffer dst, long dstIndex, long count);

  /**
   * Launches a kernel. On a GPU the call returns once the launch is queued, but in emulation it
   * returns when the kernel has finished.
   *
   * @param kernel the kernel's name, such as {@code kiln_elementwise_unary}
   * @param grid the number of blocks along x, y and z
   * @param block the number of threads per block along x, y and z
   * @param dynamicSharedBytes bytes of dynamic shared memory per block
   * @param args the kernel's arguments in order: a {@link DeviceBuffer} for a pointer, or an {@link
   *     java.util.Optional} of one for a pointer that the kernel tests for null, and an {@link
   *     Integer}, {@link Float} or {@link Long} (for {@code unsigned long long}) for a scalar
   * @throws IllegalArgumentException naming the kernel and the argument's position if an argument
   *     is {@code null}
   */
  void launch(String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args);

  /** Blocks until every launch and copy issued so far has finished, and reports their errors. */
  void synchronize();

  /** Releases what this runtime owns. A shared GPU context stays open for other users. */
  @Override
  void close();

  /** Copies all of {@code src} to the start of {@code dst}. */
  default void copyToDevice(float[] src, DeviceBuffer dst) {
    copyToDevice(src, 0, dst, 0, src.length);
  }

  /** Fills all of {@code dst} from the start of {@code src}. */
  default void copyToHost(DeviceBuffer src, float[] dst) {
    copyToHost(src, 0, dst, 0, dst.length);
  }

  /**
   * Copies ints to the start of {@code dst}, for the kernels' int parameters in device memory
   * (shapes, strides, argmax indices). The ints travel as floats of the same four bytes: the bytes
   * are copied through memory segments, never converted, so every int arrives intact.
   */
  default void copyToDevice(int[] src, DeviceBuffer dst) {
    float[] bits = new float[src.length];
    MemorySegment.copy(
        MemorySegment.ofArray(src), 0, MemorySegment.ofArray(bits), 0, (long) src.length * 4);
    copyToDevice(bits, 0, dst, 0, bits.length);
  }

  /**
   * Fills all of {@code dst} with ints from the start of {@code src}, as {@link #copyToDevice}
   * describes.
   */
  default void copyToHost(DeviceBuffer src, int[] dst) {
    float[] bits = new float[dst.length];
    copyToHost(src, 0, bits, 0, bits.length);
    MemorySegment.copy(
        MemorySegment.ofArray(bits),
        ValueLayout.JAVA_INT,
        0,
        MemorySegment.ofArray(dst),
        ValueLayout.JAVA_INT,
        0,
        dst.length);
  }

  /** Allocates a buffer and copies {@code values} into it. */
  default DeviceBuffer upload(float[] values) {
    DeviceBuffer buffer = allocateFloats(values.length);
    copyToDevice(values, buffer);
    return buffer;
  }

  /**
   * Allocates a buffer and copies {@code values} into it.
   *
   * <p>On a CUDA device a small copy from a Java array first waits for the stream to drain (see
   * {@link dev.kiln.core.backend.cuda.CudaCopies}), so launchers take their shapes and strides from
   * {@link #constants()} instead, which uploads each distinct array once.
   */
  default DeviceBuffer upload(int[] values) {
    DeviceBuffer buffer = allocateFloats(values.length);
    copyToDevice(values, buffer);
    return buffer;
  }

  /**
   * Keeps {@code buffers} reachable up to this call. The block of a tensor's storage goes back to
   * the allocator's cache once its {@link DeviceBuffer} object is unreachable (see {@code
   * DeviceStorage}), and from there to the next allocation, possibly on another thread. A call that
   * passes only the buffers' addresses to native code, such as cuBLAS or cuDNN, or that launches
   * with a {@link #slice}, does not keep the buffers themselves reachable: the JIT may treat them
   * as dead from their last use in Java. So such a method calls this after its last native call,
   * and the blocks cannot change hands before that work is queued on the stream.
   */
  static void keepReachable(DeviceBuffer... buffers) {
    Reference.reachabilityFence(buffers);
  }

  /**
   * Returns a view of {@code count} floats of {@code buffer} from float index {@code first}: a
   * pointer into the middle of the buffer, for a kernel that should see only part of it. The view
   * shares the memory and must not be freed. It does not keep {@code buffer} reachable, so the
   * caller keeps it so with {@link #keepReachable} until its last use of the view.
   *
   * @throws IllegalArgumentException if the range runs past the buffer's end
   */
  static DeviceBuffer slice(DeviceBuffer buffer, long first, long count) {
    long offset = first * Float.BYTES;
    long bytes = count * Float.BYTES;
    if (first < 0 || count < 0 || offset + bytes > buffer.bytes()) {
      throw new IllegalArgumentException(
          String.format(
              "floats [%d, %d) do not lie inside buffer %s of %d bytes",
              first, first + count, buffer.hexAddress(), buffer.bytes()));
    }
    return new DeviceBuffer(buffer.address() + offset, bytes, buffer.allocation());
  }
}
