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

  /** The message without its advice: the sizes and the device's state. */
  private final String situation;

  /**
   * Creates the exception with its full message.
   *
   * @param message the message, which names the sizes and what to do
   * @param requestedBytes the bytes of the request that failed
   */
  public DeviceOutOfMemoryException(String message, long requestedBytes) {
    this(message, "", requestedBytes);
  }

  /**
   * Creates the exception from its facts and the advice for a Java caller, so that a command line
   * can print the facts with advice of its own.
   *
   * @param situation the sizes and the device's state, as one or more sentences
   * @param advice what a Java caller can do, appended to the message after a space; may be empty
   * @param requestedBytes the bytes of the request that failed
   */
  public DeviceOutOfMemoryException(String situation, String advice, long requestedBytes) {
    super(advice.isEmpty() ? situation : situation + " " + advice);
    this.situation = situation;
    this.requestedBytes = requestedBytes;
  }

  /** Returns the bytes of the request that failed, before rounding. */
  public long requestedBytes() {
    return requestedBytes;
  }

  /**
   * Returns the message without the advice for Java callers: the sizes and the device's state.
   * Where the exception was created without separate advice, this is the whole message.
   */
  public String situation() {
    return situation;
  }
}
