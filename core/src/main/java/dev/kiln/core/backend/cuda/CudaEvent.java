package dev.kiln.core.backend.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA event: a marker on a stream that completes when the GPU reaches it. Two events time the
 * GPU work between them, without the CPU-side noise of launch overhead.
 *
 * <p>Create events with {@link CudaContext#recordEvent()}.
 */
public final class CudaEvent implements AutoCloseable {

  private final CudaContext context;
  private final CUevent event = new CUevent();
  private boolean closed;

  /** Creates an event with timing enabled ({@code cuEventCreate}), not yet recorded. */
  CudaEvent(CudaContext context) {
    this.context = context;
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuEventCreate(event, CUevent_flags.CU_EVENT_DEFAULT),
        "cuEventCreate",
        "flags=CU_EVENT_DEFAULT");
  }

  /** Records the event on the context's stream ({@code cuEventRecord}). */
  void record() {
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuEventRecord(event, context.stream()),
        "cuEventRecord",
        "stream=kiln's stream of " + context);
  }

  /** Blocks until the GPU has reached the event ({@code cuEventSynchronize}). */
  public void synchronize() {
    context.makeCurrent();
    CudaException.check(JCudaDriver.cuEventSynchronize(event), "cuEventSynchronize", "");
  }

  /** Returns whether the GPU has reached the event, without blocking ({@code cuEventQuery}). */
  public boolean isComplete() {
    context.makeCurrent();
    int result = JCudaDriver.cuEventQuery(event);
    if (result == CUresult.CUDA_ERROR_NOT_READY) {
      return false;
    }
    CudaException.check(result, "cuEventQuery", "");
    return true;
  }

  /**
   * Returns the GPU time in milliseconds between this event and a later one, after waiting for the
   * later one ({@code cuEventElapsedTime}). The driver's resolution is about half a microsecond.
   *
   * @param end an event recorded after this one on the same context
   */
  public float elapsedMillis(CudaEvent end) {
    end.synchronize();
    float[] millis = new float[1];
    CudaException.check(
        JCudaDriver.cuEventElapsedTime(millis, event, end.event), "cuEventElapsedTime", "");
    return millis[0];
  }

  /** Destroys the event ({@code cuEventDestroy}). A second call does nothing. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    context.makeCurrent();
    CudaException.check(JCudaDriver.cuEventDestroy(event), "cuEventDestroy", "");
  }
}
