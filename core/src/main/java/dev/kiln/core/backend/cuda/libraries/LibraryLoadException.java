package dev.kiln.core.backend.cuda.libraries;

/**
 * A vendor library that could not be used: not found, rejected, failed to load, or missing
 * functions. The message is the reason that {@link VendorSelection} logs.
 */
public final class LibraryLoadException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** Creates the exception from a reason that names the cause and the fix. */
  public LibraryLoadException(String message) {
    super(message);
  }
}
