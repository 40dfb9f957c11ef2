package dev.kiln.keypoints.model;

/**
 * An invalid model description. The message starts with {@code source:line:} so that an editor or a
 * terminal can jump to the line, then states the problem and how to fix it.
 */
public final class ModelFormatException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final String sourceName;
  private final int line;

  /** Creates an error at {@code line} (counted from 1) of the text read from {@code sourceName}. */
  public ModelFormatException(String sourceName, int line, String problem) {
    super(sourceName + ":" + line + ": " + problem);
    this.sourceName = sourceName;
    this.line = line;
  }

  /** Name of the file or preset that the text came from. */
  public String sourceName() {
    return sourceName;
  }

  /** Line number of the error, counted from 1. */
  public int line() {
    return line;
  }
}
