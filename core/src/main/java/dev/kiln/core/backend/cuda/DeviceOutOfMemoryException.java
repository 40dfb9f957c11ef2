package dev.kiln.core.backend.cuda;

/**
 * Thrown when a device cannot provide a block even after the allocator returned its cache.
 *
 * <p>The allocator stays consistent after this exception: nothing was handed out, and later,
 * smaller requests can still succeed.
 */
public final class DeviceOutOfMemoryException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** Bytes of the request that failed, before rounding to a size class. */
  private final long requestedBytes;

  /**
   * Creates the exception with its full message.
   *
   * @param message the message, which names the sizes and what to do
   * @param requestedBytes the bytes of the request that failed
   */
  public DeviceOutOfMemoryException(String message, long requestedBytes) {
    super(message);
    this.requestedBytes = requestedBytes;
  }

  /** Returns the bytes of the request that failed, before rounding. */
  public long requestedBytes() {
    return requestedBytes;
  }
}
