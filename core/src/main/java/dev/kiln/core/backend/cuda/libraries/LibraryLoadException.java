package dev.kiln.core.backend.cuda.libraries;

/**
 * A vendor library that could not be used: not found, rejected, failed to load, or missing
 * functions. The message is the reason that {@link VendorSelection} logs, and the summary is the
 * short form for its one-line choice.
 */
public final class LibraryLoadException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** The reason in a few words, without paths or advice. */
  private final String summary;

  /** Creates the exception from a reason that names the cause and the fix. */
  public LibraryLoadException(String message) {
    this(message, message);
  }

  /**
   * Creates the exception from a short summary and the full reason.
   *
   * @param summary the reason in a few words, such as "no libcublas.so.13 or libcublas.so.12 was
   *     found"
   * @param message the full reason, with the files, folders and fix
   */
  public LibraryLoadException(String summary, String message) {
    super(message);
    this.summary = summary;
  }

  /** Returns the reason in a few words, or the whole message where none was given. */
  public String summary() {
    return summary;
  }
}
