package dev.kiln.keypoints.eval;

/**
 * A minimal recursive-descent JSON recognizer for tests: it accepts RFC 8259 text and nothing else.
 */
final class JsonCheck {
  private final String text;
  private int position;

  private JsonCheck(String text) {
    this.text = text;
  }

  /** Returns whether {@code text} is one well-formed JSON value with optional whitespace around. */
  static boolean isValid(String text) {
    JsonCheck check = new JsonCheck(text);
    try {
      check.value();
      check.whitespace();
      return check.position == text.length();
    } catch (IllegalStateException | StringIndexOutOfBoundsException e) {
      return false;
    }
  }

  private void value() {
    whitespace();
    char c = text.charAt(position);
    if (c == '{') {
      object();
    } else if (c == '[') {
      array();
    } else if (c == '"') {
      string();
    } else if (c == '-' || Character.isDigit(c)) {
      number();
    } else if (!literal("true") && !literal("false") && !literal("null")) {
      throw new IllegalStateException("unexpected " + c + " at " + position);
    }
  }

  private void object() {
    position++;
    whitespace();
    if (text.charAt(position) == '}') {
      position++;
      return;
    }
    while (true) {
      whitespace();
      string();
      whitespace();
      expect(':');
      value();
      whitespace();
      if (text.charAt(position) == '}') {
        position++;
        return;
      }
      expect(',');
    }
  }

  private void array() {
    position++;
    whitespace();
    if (text.charAt(position) == ']') {
      position++;
      return;
    }
    while (true) {
      value();
      whitespace();
      if (text.charAt(position) == ']') {
        position++;
        return;
      }
      expect(',');
    }
  }

  private void string() {
    expect('"');
    while (true) {
      char c = text.charAt(position++);
      if (c == '"') {
        return;
      }
      if (c < 0x20) {
        throw new IllegalStateException("raw control character at " + position);
      }
      if (c == '\\') {
        char escaped = text.charAt(position++);
        if (escaped == 'u') {
          for (int i = 0; i < 4; i++) {
            if (Character.digit(text.charAt(position++), 16) < 0) {
              throw new IllegalStateException("bad \\u escape at " + position);
            }
          }
        } else if ("\"\\/bfnrt".indexOf(escaped) < 0) {
          throw new IllegalStateException("bad escape at " + position);
        }
      }
    }
  }

  private void number() {
    int start = position;
    while (position < text.length() && "+-0123456789.eE".indexOf(text.charAt(position)) >= 0) {
      position++;
    }
    String number = text.substring(start, position);
    if (!number.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
      throw new IllegalStateException("bad number " + number);
    }
  }

  private boolean literal(String word) {
    if (text.startsWith(word, position)) {
      position += word.length();
      return true;
    }
    return false;
  }

  private void expect(char c) {
    if (text.charAt(position) != c) {
      throw new IllegalStateException("expected " + c + " at " + position);
    }
    position++;
  }

  private void whitespace() {
    while (position < text.length() && " \t\r\n".indexOf(text.charAt(position)) >= 0) {
      position++;
    }
  }
}
