package dev.kiln.core.backend.cuda.libraries;

import java.util.List;

/**
 * Shortens JCuda's library-load errors to one line for a log.
 *
 * <p>JCuda's loader tries two ways, a library on {@code java.library.path} and then one extracted
 * from the jar, and its {@link UnsatisfiedLinkError} message contains both attempts with their full
 * stack traces, often 100 lines. The useful part is the first line, which names the JNI library,
 * and the exception of the attempt from the jar, which names the real cause, such as {@code
 * libcublas.so.12: cannot open shared object file}.
 */
final class JcudaLoadErrors {

  /** The line of JCuda's message that precedes the jar attempt's exception. */
  private static final String RESOURCE_ATTEMPT = "attempt to load the library as a resource:";

  private JcudaLoadErrors() {}

  /** Returns the first line of the error and the jar attempt's cause, where the message has it. */
  static String summarize(Throwable error) {
    String message = error.getMessage();
    if (message == null || message.isBlank()) {
      return error.toString();
    }
    List<String> lines = message.lines().map(String::strip).toList();
    String summary = lines.getFirst();
    for (int i = 0; i < lines.size() - 1; i++) {
      if (lines.get(i).endsWith(RESOURCE_ATTEMPT) && !lines.get(i + 1).isEmpty()) {
        return summary + ": " + lines.get(i + 1);
      }
    }
    return lines.size() == 1 ? error.toString() : summary;
  }
}
