package dev.kiln.keypoints.fetch;

import java.io.IOException;

/**
 * Failure to download, check or unpack the keypoint dataset. The message states what failed and
 * what the user can do instead.
 */
public class FetchException extends IOException {
  private static final long serialVersionUID = 1L;

  /** Creates an exception with the given message. */
  public FetchException(String message) {
    super(message);
  }

  /** Creates an exception with the given message and cause. */
  public FetchException(String message, Throwable cause) {
    super(message, cause);
  }
}
