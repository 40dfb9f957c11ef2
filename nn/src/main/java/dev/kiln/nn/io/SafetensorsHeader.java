package dev.kiln.nn.io;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The validated JSON header of a safetensors file: each tensor's dtype, shape and byte range, in
 * file order, and the optional string-to-string metadata.
 *
 * <p>Validation checks every field's presence and type, that each shape's byte count equals the
 * length of its range, and that ranges lie inside the data section without overlapping. Gaps
 * between ranges are accepted. Unknown fields inside a tensor entry are ignored.
 */
final class SafetensorsHeader {
  /** Largest header accepted, in bytes. Real headers are far smaller, so more means corruption. */
  static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

  /** Key of the optional metadata object in the header. */
  static final String METADATA_KEY = "__metadata__";

  /** One tensor's entry, with {@code begin} and {@code end} as byte offsets into the data. */
  record Entry(String name, SafetensorsDType dtype, int[] shape, long begin, long end) {
    long byteLength() {
      return end - begin;
    }
  }

  private final Map<String, Entry> entries;
  private final Map<String, String> metadata;

  private SafetensorsHeader(Map<String, Entry> entries, Map<String, String> metadata) {
    this.entries = Collections.unmodifiableMap(entries);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /** Returns the entries by name, in file order. */
  Map<String, Entry> entries() {
    return entries;
  }

  /** Returns the metadata in file order, or an empty map when the header has none. */
  Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Parses and validates header bytes.
   *
   * @param file the file, named in error messages
   * @param headerBytes the N header bytes that follow the 8-byte length
   * @param dataSize the number of bytes after the header
   * @throws SafetensorsException if the header is invalid or does not match the data section
   */
  static SafetensorsHeader parse(Path file, byte[] headerBytes, long dataSize)
      throws SafetensorsException {
    String text = decodeUtf8(file, headerBytes);

    Object root;
    try {
      root = Json.parse(text);
    } catch (Json.ParseException e) {
      throw new SafetensorsException(
          file,
          "header JSON is invalid: "
              + e.getMessage()
              + " of the header; the file is corrupt or not a safetensors file",
          e);
    }
    if (!(root instanceof Map<?, ?> object)) {
      throw new SafetensorsException(
          file, "header must be a JSON object but is " + typeName(root) + "; fix the writer");
    }

    Map<String, Entry> entries = new LinkedHashMap<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Map.Entry<?, ?> field : object.entrySet()) {
      String name = (String) field.getKey();
      if (name.equals(METADATA_KEY)) {
        readMetadata(file, field.getValue(), metadata);
      } else {
        entries.put(name, readEntry(file, name, field.getValue(), dataSize));
      }
    }

    checkOverlaps(file, entries.values());
    return new SafetensorsHeader(entries, metadata);
  }

  private static String decodeUtf8(Path file, byte[] headerBytes) throws SafetensorsException {
    ByteBuffer input = ByteBuffer.wrap(headerBytes);
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(input)
          .toString();
    } catch (CharacterCodingException e) {
      throw new SafetensorsException(
          file,
          "header is not valid UTF-8 near byte "
              + input.position()
              + " of the header; the file is corrupt or not a safetensors file",
          e);
    }
  }

  private static void readMetadata(Path file, Object value, Map<String, String> metadata)
      throws SafetensorsException {
    if (!(value instanceof Map<?, ?> object)) {
      throw new SafetensorsException(
          file,
          METADATA_KEY
              + " must be a JSON object of strings but is "
              + typeName(value)
              + ";"
              + " fix the writer");
    }
    for (Map.Entry<?, ?> item : object.entrySet()) {
      if (!(item.getValue() instanceof String text)) {
        throw new SafetensorsException(
            file,
            METADATA_KEY
                + " value of key \""
                + item.getKey()
                + "\" must be a string but is "
                + typeName(item.getValue())
                + "; store numbers and lists as strings, e.g. \"3\" or \"[0.9, 0.999]\"");
      }
      metadata.put((String) item.getKey(), text);
    }
  }

  private static Entry readEntry(Path file, String name, Object value, long dataSize)
      throws SafetensorsException {
    String where = "tensor \"" + name + "\"";
    if (!(value instanceof Map<?, ?> fields)) {
      throw new SafetensorsException(
          file,
          where
              + " must be a JSON object with dtype, shape and data_offsets but is "
              + typeName(value));
    }

    String dtypeName = requireField(file, where, fields, "dtype", String.class);
    SafetensorsDType dtype = SafetensorsDType.fromName(dtypeName);
    if (dtype == null) {
      throw new SafetensorsException(
          file,
          where
              + " has unknown dtype \""
              + dtypeName
              + "\"; the known dtypes are "
              + SafetensorsDType.allNames());
    }

    List<?> shapeList = requireField(file, where, fields, "shape", List.class);
    int[] shape = new int[shapeList.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = (int) requireInteger(file, where + " shape", shapeList.get(i), Integer.MAX_VALUE);
    }

    List<?> offsets = requireField(file, where, fields, "data_offsets", List.class);
    if (offsets.size() != 2) {
      throw new SafetensorsException(
          file, where + " data_offsets must have 2 numbers [begin, end] but has " + offsets.size());
    }
    long begin = requireInteger(file, where + " data_offsets", offsets.get(0), Long.MAX_VALUE);
    long end = requireInteger(file, where + " data_offsets", offsets.get(1), Long.MAX_VALUE);
    String range = "[" + begin + ", " + end + "]";
    if (begin > end) {
      throw new SafetensorsException(
          file, where + " data_offsets " + range + " has begin after end; the file is corrupt");
    }
    if (end > dataSize) {
      throw new SafetensorsException(
          file,
          where
              + " data_offsets "
              + range
              + " end outside the data section of "
              + dataSize
              + " bytes; the file is truncated or corrupt");
    }

    checkByteLength(file, where, dtype, shape, end - begin);
    return new Entry(name, dtype, shape, begin, end);
  }

  /** Checks that the shape's element count times the dtype size equals the range length. */
  private static void checkByteLength(
      Path file, String where, SafetensorsDType dtype, int[] shape, long byteLength)
      throws SafetensorsException {
    String problem = null;
    try {
      long expected = dtype.byteSize();
      for (int size : shape) {
        expected = Math.multiplyExact(expected, size);
      }
      if (expected != byteLength) {
        problem = "needs " + expected + " bytes";
      }
    } catch (ArithmeticException overflow) {
      problem = "needs more than 2^63 bytes";
    }

    if (problem != null) {
      throw new SafetensorsException(
          file,
          where
              + " of shape "
              + Arrays.toString(shape)
              + " and dtype "
              + dtype
              + " "
              + problem
              + " but its data_offsets cover "
              + byteLength
              + " bytes; the header or the data is corrupt");
    }
  }

  private static void checkOverlaps(Path file, Iterable<Entry> all) throws SafetensorsException {
    // Empty ranges hold no bytes, so they cannot overlap anything.
    List<Entry> sorted = new ArrayList<>();
    for (Entry entry : all) {
      if (entry.byteLength() > 0) {
        sorted.add(entry);
      }
    }
    sorted.sort(Comparator.comparingLong(Entry::begin));

    for (int i = 1; i < sorted.size(); i++) {
      Entry previous = sorted.get(i - 1);
      Entry current = sorted.get(i);
      if (current.begin() < previous.end()) {
        throw new SafetensorsException(
            file,
            "data_offsets of tensors \""
                + previous.name()
                + "\" ["
                + previous.begin()
                + ", "
                + previous.end()
                + "] and \""
                + current.name()
                + "\" ["
                + current.begin()
                + ", "
                + current.end()
                + "] overlap; each tensor needs its own byte range, so the file is corrupt");
      }
    }
  }

  private static <T> T requireField(
      Path file, String where, Map<?, ?> fields, String key, Class<T> type)
      throws SafetensorsException {
    if (!fields.containsKey(key)) {
      throw new SafetensorsException(file, where + " is missing the field \"" + key + "\"");
    }
    Object value = fields.get(key);
    if (!type.isInstance(value)) {
      String expected = type == String.class ? "a string" : "an array";
      throw new SafetensorsException(
          file,
          where + " field \"" + key + "\" must be " + expected + " but is " + typeName(value));
    }
    return type.cast(value);
  }

  private static long requireInteger(Path file, String where, Object value, long max)
      throws SafetensorsException {
    if (value instanceof Long number && number >= 0 && number <= max) {
      return number;
    }
    throw new SafetensorsException(
        file,
        where
            + " must contain integers from 0 to "
            + max
            + " but contains "
            + (value instanceof String ? "\"" + value + "\"" : String.valueOf(value))
            + "; the header is corrupt");
  }

  /** Returns the JSON type name of a parsed value, for error messages. */
  private static String typeName(Object value) {
    return switch (value) {
      case null -> "null";
      case Map<?, ?> _ -> "an object";
      case List<?> _ -> "an array";
      case String _ -> "a string";
      case Boolean _ -> "a boolean";
      default -> "a number";
    };
  }
}
