package dev.kiln.keypoints.cli;

/**
 * Text for the terminal, with the characters escaped that would move the cursor, change colours or
 * reorder the line there. File names may contain any of them, and an error message that quotes a
 * file name must not let it clear the screen or hide part of the message.
 */
final class TerminalText {
  private TerminalText() {}

  /**
   * Returns {@code text} with each control and format character written as an escape, {@code \n},
   * {@code \r}, {@code \t} or {@code \}{@code uXXXX}, except the line breaks and tabs of a message
   * when {@code keepLayout} is true. With {@code keepLayout} false the backslash is escaped too, so
   * that the result reads back unambiguously: a file named with a backslash and an n prints as
   * {@code \\n}, and one named with a newline as {@code \n}.
   */
  static String escape(String text, boolean keepLayout) {
    StringBuilder escaped = new StringBuilder(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (keepLayout && (c == '\n' || c == '\t')) {
        escaped.append(c);
      } else if (c == '\\' && !keepLayout) {
        escaped.append("\\\\");
      } else if (c == '\n') {
        escaped.append("\\n");
      } else if (c == '\r') {
        escaped.append("\\r");
      } else if (c == '\t') {
        escaped.append("\\t");
      } else if (needsEscape(c)) {
        escaped.append(String.format("\\u%04x", (int) c));
      } else {
        escaped.append(c);
      }
    }
    return escaped.toString();
  }

  /**
   * Tests for a control character, or a format or separator character such as U+202E, which turns
   * the rest of the line around, or U+2028, which breaks it.
   */
  private static boolean needsEscape(char c) {
    int type = Character.getType(c);
    return Character.isISOControl(c)
        || type == Character.FORMAT
        || type == Character.LINE_SEPARATOR
        || type == Character.PARAGRAPH_SEPARATOR;
  }
}
