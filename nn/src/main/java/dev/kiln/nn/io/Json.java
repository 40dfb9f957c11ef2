package dev.kiln.nn.io;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Minimal JSON (RFC 8259) reader for safetensors headers, which the benchmarks also use to read the
 * reports of kiln's commands. {@link JsonWriter} is the writer.
 *
 * <p>Parsed values map to Java as follows: object to {@code LinkedHashMap<String, Object>} in
 * document order, array to {@code List<Object>}, string to {@code String}, true/false to {@code
 * Boolean}, null to {@code null}. A number without fraction or exponent that fits in a {@code long}
 * becomes a {@code Long}, so integers stay exact far beyond 2^53. Any other number becomes a {@code
 * Double}.
 *
 * <p>The reader rejects duplicate object keys, unpaired surrogates, trailing content after the
 * value and nesting deeper than {@link #MAX_DEPTH}.
 */
public final class Json {
  /** Deepest nesting of arrays and objects accepted, which bounds the parser's recursion. */
  static final int MAX_DEPTH = 256;

  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Invalid JSON text, with the zero-based character index where parsing stopped. */
  public static final class ParseException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int position;

    ParseException(String problem, int position) {
      super(problem + " at character " + position);
      this.position = position;
    }

    /** Zero-based index of the character in the text where the problem was found. */
    public int position() {
      return position;
    }
  }

  /** Parses one JSON value that may be surrounded by whitespace and nothing else. */
  public static Object parse(String text) throws ParseException {
    Json parser = new Json(text);
    parser.skipWhitespace();
    Object value = parser.readValue(0);

    parser.skipWhitespace();
    if (parser.pos < text.length()) {
      throw parser.error("unexpected content after the JSON value");
    }
    return value;
  }

  private Object readValue(int depth) throws ParseException {
    if (pos >= text.length()) {
      throw error("unexpected end of text, expected a value");
    }
    char c = text.charAt(pos);
    return switch (c) {
      case '{' -> readObject(depth + 1);
      case '[' -> readArray(depth + 1);
      case '"' -> readString();
      case 't' -> readLiteral("true", Boolean.TRUE);
      case 'f' -> readLiteral("false", Boolean.FALSE);
      case 'n' -> readLiteral("null", null);
      default -> {
        if (c == '-' || (c >= '0' && c <= '9')) {
          yield readNumber();
        }
        throw error("unexpected character '" + c + "', expected a value");
      }
    };
  }

  private Map<String, Object> readObject(int depth) throws ParseException {
    checkDepth(depth);
    pos++;
    Map<String, Object> object = new LinkedHashMap<>();
    skipWhitespace();
    if (peek() == '}') {
      pos++;
      return object;
    }

    while (true) {
      skipWhitespace();
      if (peek() != '"') {
        throw error("expected a string key");
      }
      int keyStart = pos;
      String key = readString();
      if (object.containsKey(key)) {
        throw new ParseException("duplicate key \"" + key + "\"", keyStart);
      }

      skipWhitespace();
      expect(':');
      skipWhitespace();
      object.put(key, readValue(depth));

      skipWhitespace();
      char next = peek();
      pos++;
      if (next == '}') {
        return object;
      }
      if (next != ',') {
        pos--;
        throw error("expected ',' or '}' in object");
      }
    }
  }

  private List<Object> readArray(int depth) throws ParseException {
    checkDepth(depth);
    pos++;
    List<Object> array = new ArrayList<>();
    skipWhitespace();
    if (peek() == ']') {
      pos++;
      return array;
    }

    while (true) {
      skipWhitespace();
      array.add(readValue(depth));
      skipWhitespace();
      char next = peek();
      pos++;
      if (next == ']') {
        return array;
      }
      if (next != ',') {
        pos--;
        throw error("expected ',' or ']' in array");
      }
    }
  }

  private String readString() throws ParseException {
    pos++;
    StringBuilder out = new StringBuilder();
    while (true) {
      if (pos >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(pos);
      if (c == '"') {
        pos++;
        return out.toString();
      }
      if (c < 0x20) {
        throw error("unescaped control character U+" + hex4(c) + " in string");
      }
      if (c != '\\') {
        checkSurrogate(c, pos);
        out.append(c);
        pos++;
        continue;
      }
      readEscape(out);
    }
  }

  /** Reads one escape sequence starting at the backslash and appends the character(s) it means. */
  private void readEscape(StringBuilder out) throws ParseException {
    int start = pos;
    pos++;
    if (pos >= text.length()) {
      throw error("unterminated escape sequence");
    }
    char c = text.charAt(pos++);
    switch (c) {
      case '"', '\\', '/' -> out.append(c);
      case 'b' -> out.append('\b');
      case 'f' -> out.append('\f');
      case 'n' -> out.append('\n');
      case 'r' -> out.append('\r');
      case 't' -> out.append('\t');
      case 'u' -> {
        char unit = readHex4();
        if (Character.isHighSurrogate(unit)) {
          // A high surrogate must be followed at once by an escaped low surrogate.
          if (!text.startsWith("\\u", pos)) {
            throw new ParseException("unpaired surrogate \\u" + hex4(unit), start);
          }
          pos += 2;
          char low = readHex4();
          if (!Character.isLowSurrogate(low)) {
            throw new ParseException("unpaired surrogate \\u" + hex4(unit), start);
          }
          out.append(unit).append(low);
        } else if (Character.isLowSurrogate(unit)) {
          throw new ParseException("unpaired surrogate \\u" + hex4(unit), start);
        } else {
          out.append(unit);
        }
      }
      default -> throw new ParseException("invalid escape sequence \\" + c, start);
    }
  }

  private char readHex4() throws ParseException {
    if (pos + 4 > text.length()) {
      throw error("truncated \\u escape, expected 4 hex digits");
    }
    int value = 0;
    for (int i = 0; i < 4; i++) {
      int digit = Character.digit(text.charAt(pos), 16);
      if (digit < 0) {
        throw error("invalid hex digit '" + text.charAt(pos) + "' in \\u escape");
      }
      value = value * 16 + digit;
      pos++;
    }
    return (char) value;
  }

  /** Rejects a raw surrogate char that is not part of a valid pair in the text. */
  private void checkSurrogate(char c, int at) throws ParseException {
    boolean paired;
    if (Character.isHighSurrogate(c)) {
      paired = at + 1 < text.length() && Character.isLowSurrogate(text.charAt(at + 1));
    } else if (Character.isLowSurrogate(c)) {
      paired = at > 0 && Character.isHighSurrogate(text.charAt(at - 1));
    } else {
      return;
    }
    if (!paired) {
      throw new ParseException("unpaired surrogate U+" + hex4(c), at);
    }
  }

  private Object readNumber() throws ParseException {
    int start = pos;
    boolean integral = true;
    if (peek() == '-') {
      pos++;
    }

    if (peek() == '0') {
      pos++;
    } else if (isDigit(peek())) {
      skipDigits();
    } else {
      throw error("invalid number, expected a digit");
    }

    if (peek() == '.') {
      integral = false;
      pos++;
      if (!isDigit(peek())) {
        throw error("invalid number, expected a digit after '.'");
      }
      skipDigits();
    }

    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      pos++;
      if (peek() == '+' || peek() == '-') {
        pos++;
      }
      if (!isDigit(peek())) {
        throw error("invalid number, expected a digit in the exponent");
      }
      skipDigits();
    }

    String literal = text.substring(start, pos);
    if (integral) {
      try {
        return Long.parseLong(literal);
      } catch (NumberFormatException tooLarge) {
        // Falls through: an integer outside the long range is returned as a double.
      }
    }
    return Double.parseDouble(literal);
  }

  private Object readLiteral(String word, Object value) throws ParseException {
    if (!text.startsWith(word, pos)) {
      throw error("invalid literal, expected " + word);
    }
    pos += word.length();
    return value;
  }

  private void checkDepth(int depth) throws ParseException {
    if (depth > MAX_DEPTH) {
      throw error("nesting deeper than " + MAX_DEPTH + " levels");
    }
  }

  private void expect(char c) throws ParseException {
    if (peek() != c) {
      throw error("expected '" + c + "'");
    }
    pos++;
  }

  /** Returns the current character, or 0 at the end of the text. */
  private char peek() {
    return pos < text.length() ? text.charAt(pos) : 0;
  }

  private void skipDigits() {
    while (isDigit(peek())) {
      pos++;
    }
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private void skipWhitespace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        return;
      }
      pos++;
    }
  }

  private ParseException error(String problem) {
    return new ParseException(problem, pos);
  }

  /** Returns the four upper-case hex digits of a UTF-16 unit. */
  static String hex4(char c) {
    return String.format("%04X", (int) c);
  }
}
