package dev.kiln.keypoints.data;

import java.io.IOException;

/** Raised by the {@link FaceDataset.OnBadRow#FAIL FAIL} policy at the first bad dataset row. */
public final class BadRowException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The row that stopped loading; not serialized. */
  private final transient BadRow badRow;

  /** Creates the exception; {@code context} is appended to the row's message, if not empty. */
  public BadRowException(BadRow badRow, String context) {
    super(context.isEmpty() ? badRow.message() : badRow.message() + ". " + context);
    this.badRow = badRow;
  }

  /** Returns the row that stopped loading. */
  public BadRow badRow() {
    return badRow;
  }
}
