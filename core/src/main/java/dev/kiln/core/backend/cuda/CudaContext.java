package dev.kiln.core.backend.cuda;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * Everything kiln keeps for one CUDA device: its primary context, one stream, the caching
 * allocator, the loaded kernels and the host copies.
 *
 * <h2>Primary context</h2>
 *
 * <p>kiln uses the device's primary context ({@code cuDevicePrimaryCtxRetain}), the one that the
 * CUDA runtime, cuBLAS and cuDNN also use, so that memory and streams are shared with those
 * libraries. The driver keeps one current context per operating-system thread, so every method that
 * calls the driver first calls {@link #makeCurrent()}.
 *
 * <h2>One stream</h2>
 *
 * <p>All work of the device goes to one stream, so kernels and copies run in the order they were
 * issued, and a block that the allocator hands out again is never used by two kernels at once. The
 * stream is non-blocking ({@code CU_STREAM_NON_BLOCKING}): it does not wait for work that other
 * libraries put on the legacy default stream, and {@link CudaCopies} orders its copies with it
 * explicitly.
 *
 * <h2>Modules</h2>
 *
 * <p>Kernels come from modules of GPU code that {@link #module(String, byte[])} loads, such as
 * kiln's fatbin or a test's own PTX. A module stays loaded until the context closes, because
 * unloading one while its kernels are queued on the stream, or while another thread is about to
 * launch one, is undefined behaviour in the driver.
 *
 * <p>Get the shared instance of a device with {@link #of(int)}. Call {@link
 * CudaAvailability#check(int)} first to get a readable reason where the device is not usable.
 */
public final class CudaContext implements AutoCloseable {

  private static final Map<Integer, CudaContext> OPEN = new HashMap<>();

  private final int deviceIndex;
  private final CUdevice device;
  private final int multiprocessors;
  private final CUcontext context = new CUcontext();
  private final CUstream stream = new CUstream();
  private final CachingAllocator allocator;
  private final CudaCopies copies;
  private final Map<String, CudaModule> modules = new LinkedHashMap<>();
  private volatile boolean closed;
  private volatile boolean released;

  private CudaContext(int deviceIndex) {
    int count = CudaDriver.deviceCount();
    if (deviceIndex >= count) {
      throw new IllegalArgumentException(
          "device cuda:" + deviceIndex + " does not exist: " + CudaAvailability.deviceRange(count));
    }
    this.deviceIndex = deviceIndex;
    this.device = CudaDriver.device(deviceIndex);
    this.multiprocessors = CudaDriver.multiprocessorCount(deviceIndex);
    CudaException.check(
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device),
        "cuDevicePrimaryCtxRetain",
        "device=cuda:" + deviceIndex);
    try {
      makeCurrent();
      CudaException.check(
          JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING),
          "cuStreamCreate",
          "flags=CU_STREAM_NON_BLOCKING, device=cuda:" + deviceIndex);
    } catch (CudaException e) {
      // Without a stream the context is useless, so the reference to it is given back.
      JCudaDriver.cuDevicePrimaryCtxRelease(device);
      throw e;
    }
    this.allocator = new CachingAllocator(new CudaMemory(this));
    this.copies = new CudaCopies(this);
  }

  /**
   * Returns the shared context of device {@code deviceIndex}, creating it on first use.
   *
   * @throws IllegalArgumentException if the machine has no device of that index
   * @throws CudaException if a driver call fails
   * @throws UnsatisfiedLinkError if JCuda's native library or {@code libcuda.so.1} cannot be loaded
   */
  public static synchronized CudaContext of(int deviceIndex) {
    if (deviceIndex < 0) {
      throw new IllegalArgumentException("device index must be 0 or more, got " + deviceIndex);
    }
    CudaContext context = OPEN.get(deviceIndex);
    if (context == null) {
      context = new CudaContext(deviceIndex);
      OPEN.put(deviceIndex, context);
    }
    return context;
  }

  /**
   * Makes this context current on the calling thread. The call is made every time, because a Java
   * thread cannot tell whether the context is still current: a virtual thread may resume on another
   * operating-system thread, and other CUDA code may switch the context in between. The driver only
   * stores a thread-local value, so the call is cheap next to the launch or copy it precedes.
   *
   * <p>Call it right before the driver call, with nothing that may block in between: a virtual
   * thread that waits for a lock there may resume on another operating-system thread, where the
   * context is not current. On such a thread, cuBLAS and cuDNN fall back to the primary context of
   * the CUDA runtime's current device, which is device 0 unless the thread chose another. That is
   * kiln's context only on {@code cuda:0}, so the vendor bindings also make the context current
   * again after allocating a workspace.
   */
  public void makeCurrent() {
    CudaException.check(
        JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent", "device=cuda:" + deviceIndex);
  }

  /** Returns the device number N of {@code cuda:N}. */
  public int deviceIndex() {
    return deviceIndex;
  }

  /** Returns the device's number of streaming multiprocessors, read once when it opened. */
  public int multiprocessors() {
    return multiprocessors;
  }

  /** Returns the stream that all of this device's work goes to. */
  public CUstream stream() {
    return stream;
  }

  /** Returns the caching allocator of this device. */
  public CachingAllocator allocator() {
    return allocator;
  }

  /** Returns the host-to-device and device-to-host copies of this device. */
  public CudaCopies copies() {
    return copies;
  }

  /**
   * Returns the module loaded under {@code name}, loading {@code image} on the first request.
   * Different users of the device load under different names, so that neither replaces the other's
   * kernels.
   *
   * @param name what the module holds, such as "kiln kernels"
   * @param image the fatbin bytes (the caller reads them, for example from the kernels jar's
   *     resource {@code dev/kiln/kernels/kiln.fatbin}), or PTX text ending in a 0 byte
   * @throws IllegalStateException if the context was closed
   * @throws CudaException if the driver rejects the image
   */
  public synchronized CudaModule module(String name, byte[] image) {
    if (closed) {
      throw new IllegalStateException("cannot load " + name + ": " + this + " was closed");
    }
    CudaModule module = modules.get(name);
    if (module == null) {
      module = new CudaModule(this, image);
      modules.put(name, module);
    }
    return module;
  }

  /** Returns a new event recorded on this device's stream now. Close it when done. */
  public CudaEvent recordEvent() {
    CudaEvent event = new CudaEvent(this);
    event.record();
    return event;
  }

  /**
   * Blocks until all work on this device's stream has finished ({@code cuStreamSynchronize}).
   *
   * @throws CudaException if that work failed, such as a kernel with an illegal address
   */
  public void synchronize() {
    makeCurrent();
    CudaException.check(
        JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize", "device=" + this);
  }

  @Override
  public String toString() {
    return "cuda:" + deviceIndex;
  }

  /**
   * Waits for the stream, then unloads the modules and releases the staging buffer, the allocator's
   * cache, the stream and this process's reference to the primary context. A second call does
   * nothing. Each step runs even where an earlier one fails, for example after a kernel fault, so
   * that the allocator is closed and the reference to the primary context is given back. The first
   * failure is thrown at the end, with the later ones suppressed.
   */
  @Override
  public void close() {
    synchronized (CudaContext.class) {
      if (closed) {
        return;
      }
      closed = true;
      OPEN.remove(deviceIndex);
    }
    RuntimeException failure = null;
    failure = attempt(failure, this::synchronize);
    failure = attempt(failure, this::unloadModules);
    failure = attempt(failure, copies::close);
    failure = attempt(failure, allocator::close);
    // From here on, a block that a tensor's cleaner frees is left alone (see isReleased). Setting
    // the flag under this object's lock waits for a free that CudaMemory has already begun.
    synchronized (this) {
      released = true;
    }
    failure =
        attempt(
            failure,
            () ->
                CudaException.check(
                    JCudaDriver.cuStreamDestroy(stream), "cuStreamDestroy", "device=" + this));
    failure =
        attempt(
            failure,
            () ->
                CudaException.check(
                    JCudaDriver.cuDevicePrimaryCtxRelease(device),
                    "cuDevicePrimaryCtxRelease",
                    "device=" + this));
    if (failure != null) {
      throw failure;
    }
  }

  private synchronized void unloadModules() {
    for (CudaModule module : modules.values()) {
      module.close();
    }
    modules.clear();
  }

  /**
   * Runs one step of {@link #close()} and returns the first failure so far: {@code first}, or this
   * step's failure where there was none before, with any later one added as suppressed.
   */
  private static RuntimeException attempt(RuntimeException first, Runnable step) {
    try {
      step.run();
      return first;
    } catch (RuntimeException e) {
      if (first == null) {
        return e;
      }
      first.addSuppressed(e);
      return first;
    }
  }

  /**
   * Returns whether {@link #close()} has closed the allocator and is about to give back the stream
   * and this process's reference to the primary context. A block freed after that is left alone.
   * Where kiln held the last reference, the driver frees the block with the context, and its
   * address may then belong to a context opened since, so a {@code cuMemFree} could free another
   * tensor's memory. Where other code still holds the context, the block stays allocated until the
   * process ends, which is the smaller harm. Read it while holding this object's lock.
   */
  boolean isReleased() {
    return released;
  }
}
