package dev.kiln.nn.io;

import java.util.List;
import java.util.Map;

/** Minimal JSON writer for safetensors headers, the counterpart of {@link Json#parse}. */
final class JsonWriter {
  private JsonWriter() {}

  /**
   * Returns the compact JSON text of {@code value}: a map with string keys, a list, a string, a
   * boolean, null, or an integral number ({@code Long}, {@code Integer}). Non-ASCII characters are
   * written as they are, and control characters, quotes and backslashes are escaped.
   *
   * @throws IllegalArgumentException for any other type
   */
  static String write(Object value) {
    StringBuilder out = new StringBuilder();
    writeValue(value, out);
    return out.toString();
  }

  private static void writeValue(Object value, StringBuilder out) {
    switch (value) {
      case null -> out.append("null");
      case String s -> writeString(s, out);
      case Boolean b -> out.append(b);
      case Long n -> out.append(n);
      case Integer n -> out.append(n);
      case Map<?, ?> map -> {
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : map.entrySet()) {
          if (!(entry.getKey() instanceof String key)) {
            throw new IllegalArgumentException(
                "JSON object keys must be strings, got " + entry.getKey());
          }
          if (!first) {
            out.append(',');
          }
          first = false;
          writeString(key, out);
          out.append(':');
          writeValue(entry.getValue(), out);
        }
        out.append('}');
      }
      case List<?> list -> {
        out.append('[');
        for (int i = 0; i < list.size(); i++) {
          if (i > 0) {
            out.append(',');
          }
          writeValue(list.get(i), out);
        }
        out.append(']');
      }
      default ->
          throw new IllegalArgumentException(
              "cannot write " + value.getClass().getName() + " as JSON");
    }
  }

  private static void writeString(String s, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20) {
            out.append("\\u").append(Json.hex4(c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
