package dev.kiln.nn.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A safetensors file that kiln cannot read: an invalid header, data that does not match it, a dtype
 * kiln does not read, or a tensor name that the file does not contain. The message names the file,
 * the problem and what to do.
 */
public class SafetensorsException extends IOException {
  private static final long serialVersionUID = 1L;

  /** The file that failed, or null if none was given. */
  private final transient Path file;

  /** The message without the file's name in front. */
  private final String problem;

  /** Creates an exception whose message is "{@code file}: {@code problem}". */
  public SafetensorsException(Path file, String problem) {
    super(file + ": " + problem);
    this.file = file;
    this.problem = problem;
  }

  /** Creates an exception with the cause that made the file unreadable. */
  public SafetensorsException(Path file, String problem, Throwable cause) {
    super(file + ": " + problem, cause);
    this.file = file;
    this.problem = problem;
  }

  /** Returns the problem and what to do, the message without the file's name in front. */
  public String problem() {
    return problem;
  }

  /** Returns the file that failed. */
  public Path file() {
    return file;
  }
}
