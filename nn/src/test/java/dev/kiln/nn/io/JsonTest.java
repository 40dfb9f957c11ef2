package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

  @Test
  void parseKeepsObjectKeyOrder() throws Exception {
    Object value = Json.parse("{\"b\": 1, \"a\": [true, false, null], \"c\": {}}");

    Map<?, ?> object = assertInstanceOf(Map.class, value);
    assertEquals(List.of("b", "a", "c"), List.copyOf(object.keySet()));
    assertEquals(Arrays.asList(true, false, null), object.get("a"));
    assertEquals(Map.of(), object.get("c"));
  }

  @Test
  void parseDecodesSimpleEscapes() throws Exception {
    assertEquals("\"\\/\b\f\n\r\t", Json.parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""));
  }

  @Test
  void parseDecodesUnicodeEscape() throws Exception {
    assertEquals("caf\u00e9", Json.parse("\"caf\\u00E9\""));
  }

  @Test
  void parseDecodesSurrogatePairEscape() throws Exception {
    String parsed = (String) Json.parse("\"\\ud83d\\ude00\"");

    assertEquals(1, parsed.codePointCount(0, parsed.length()));
    assertEquals(0x1F600, parsed.codePointAt(0));
  }

  @Test
  void parseRejectsLoneHighSurrogate() {
    var e = assertThrows(Json.ParseException.class, () -> Json.parse("\"a\\ud83d b\""));

    assertTrue(e.getMessage().contains("unpaired surrogate"), e.getMessage());
    assertEquals(2, e.position());
  }

  @Test
  void parseRejectsLoneLowSurrogate() {
    var e = assertThrows(Json.ParseException.class, () -> Json.parse("\"\\ude00\""));

    assertTrue(e.getMessage().contains("unpaired surrogate"), e.getMessage());
  }

  @Test
  void parseKeepsLargeIntegersExact() throws Exception {
    assertEquals(9007199254740993L, Json.parse("9007199254740993"));
    assertEquals(-9007199254740992L, Json.parse("-9007199254740992"));
    assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
  }

  @Test
  void parseReturnsDoubleForFractions() throws Exception {
    assertEquals(1e-8, Json.parse("1e-08"));
    assertEquals(-0.5, Json.parse("-0.5"));
    assertEquals(1.0e19, Json.parse("10000000000000000000"));
  }

  @Test
  void parseRejectsTrailingGarbage() {
    var e = assertThrows(Json.ParseException.class, () -> Json.parse("{} x"));

    assertTrue(e.getMessage().contains("after the JSON value"), e.getMessage());
    assertEquals(3, e.position());
  }

  @Test
  void parseRejectsLeadingZero() {
    assertThrows(Json.ParseException.class, () -> Json.parse("01"));
  }

  @Test
  void parseRejectsMalformedNumbers() {
    for (String text : List.of("-", "1.", ".5", "1e", "+1", "1e+")) {
      assertThrows(Json.ParseException.class, () -> Json.parse(text), text);
    }
  }

  @Test
  void parseRejectsDuplicateKey() {
    var e = assertThrows(Json.ParseException.class, () -> Json.parse("{\"a\":1,\"a\":2}"));

    assertTrue(e.getMessage().contains("duplicate key \"a\""), e.getMessage());
    assertEquals(7, e.position());
  }

  @Test
  void parseRejectsDeepNesting() {
    String text = "[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1);

    var e = assertThrows(Json.ParseException.class, () -> Json.parse(text));

    assertTrue(e.getMessage().contains("nesting deeper"), e.getMessage());
  }

  @Test
  void parseAcceptsMaxDepthNesting() throws Exception {
    String text = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);

    assertInstanceOf(List.class, Json.parse(text));
  }

  @Test
  void parseRejectsRawControlCharacter() {
    var e = assertThrows(Json.ParseException.class, () -> Json.parse("\"a\nb\""));

    assertTrue(e.getMessage().contains("control character"), e.getMessage());
  }

  @Test
  void parseRejectsUnterminatedInputs() {
    for (String text : List.of("", "{", "[1,", "\"abc", "{\"a\"", "{\"a\":", "tru", "[1 2]")) {
      assertThrows(Json.ParseException.class, () -> Json.parse(text), text);
    }
  }

  @Test
  void parseRejectsTrailingComma() {
    assertThrows(Json.ParseException.class, () -> Json.parse("{\"a\":1,}"));
    assertThrows(Json.ParseException.class, () -> Json.parse("[1,]"));
  }

  @Test
  void parseReturnsNullLiteral() throws Exception {
    assertNull(Json.parse(" null "));
  }

  @Test
  void writeRoundTripsHardStrings() throws Exception {
    Map<String, Object> value = new LinkedHashMap<>();
    value.put("quote\"back\\slash", "line\nfeed\ttab\u0001\u001f");
    value.put("caf\u00e9 \ud83d\ude00", List.of(1L, -2L, true, "x"));
    value.put("none", null);

    String text = JsonWriter.write(value);

    assertEquals(value, Json.parse(text));
    assertTrue(text.contains("\\u0001"), text);
  }

  @Test
  void writeRejectsFloatingPointNumbers() {
    assertThrows(IllegalArgumentException.class, () -> JsonWriter.write(List.of(1.5)));
  }
}
