package dev.kiln.core.backend.cuda.libraries;

/**
 * The part of {@link VendorBlas} and {@link VendorDnn} that selection uses: a description and
 * close.
 */
public interface VendorBinding extends AutoCloseable {

  /** Describes the binding and the library version, for the selection's log line. */
  String description();

  /** Releases the library handle. The library itself stays loaded for the process. */
  @Override
  void close();
}
