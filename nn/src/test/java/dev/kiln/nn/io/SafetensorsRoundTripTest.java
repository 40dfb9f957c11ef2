package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsRoundTripTest {
  @TempDir Path folder;

  private static final float[] SPECIAL_FLOATS = {
    0f,
    -0f,
    1.5f,
    Float.NaN,
    Float.intBitsToFloat(0x7fc12345),
    Float.POSITIVE_INFINITY,
    Float.NEGATIVE_INFINITY,
    Float.MIN_VALUE,
    -Float.MIN_NORMAL / 3,
    Float.MAX_VALUE
  };

  private static final double[] SPECIAL_DOUBLES = {
    0.0,
    -0.0,
    Math.PI,
    Double.NaN,
    Double.longBitsToDouble(0x7ff8_0000_dead_beefL),
    Double.POSITIVE_INFINITY,
    Double.NEGATIVE_INFINITY,
    Double.MIN_VALUE,
    -Double.MIN_NORMAL / 7,
    Double.MAX_VALUE
  };

  @Test
  void float32RoundTripIsBitExact() throws Exception {
    Path file = folder.resolve("f32.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(SPECIAL_FLOATS, 2, 5)), Map.of());

    Tensor read = Safetensors.read(file).tensor("x");

    assertEquals(DType.FLOAT32, read.dtype());
    assertArrayEquals(new int[] {2, 5}, read.shape());
    assertArrayEquals(floatBits(SPECIAL_FLOATS), floatBits(read.storage().floats()));
  }

  @Test
  void float64RoundTripIsBitExact() throws Exception {
    Path file = folder.resolve("f64.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(SPECIAL_DOUBLES, 5, 1, 2)), Map.of());

    Tensor read = Safetensors.read(file).tensor("x");

    assertEquals(DType.FLOAT64, read.dtype());
    assertArrayEquals(new int[] {5, 1, 2}, read.shape());
    assertArrayEquals(doubleBits(SPECIAL_DOUBLES), doubleBits(read.storage().doubles()));
  }

  @Test
  void metadataRoundTripKeepsOrder() throws Exception {
    Map<String, String> metadata = new LinkedHashMap<>();
    metadata.put("z", "last key first");
    metadata.put("betas", "[0.9, 0.999]");
    metadata.put("quote \"\\ caf\u00e9 \ud83d\ude00", "line\nbreak");
    metadata.put("empty", "");
    Path file = folder.resolve("meta.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1}, 1)), metadata);

    Map<String, String> read = Safetensors.read(file).metadata();

    assertEquals(metadata, read);
    assertEquals(List.copyOf(metadata.keySet()), List.copyOf(read.keySet()));
  }

  @Test
  void emptyMetadataIsOmitted() throws Exception {
    Path file = folder.resolve("nometa.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1}, 1)), Map.of());

    assertTrue(Safetensors.read(file).metadata().isEmpty());
    assertTrue(!headerText(file).contains(SafetensorsHeader.METADATA_KEY), headerText(file));
  }

  @Test
  void scalarTensorRoundTrip() throws Exception {
    Path file = folder.resolve("scalar.safetensors");
    Safetensors.write(file, Map.of("s", Tensor.of(new double[] {-2.5})), Map.of());

    Tensor read = Safetensors.read(file).tensor("s");

    assertArrayEquals(new int[0], read.shape());
    assertArrayEquals(new double[] {-2.5}, read.toDoubleArray());
    assertTrue(headerText(file).contains("\"shape\":[]"), headerText(file));
  }

  @Test
  void emptyTensorRoundTrip() throws Exception {
    Path file = folder.resolve("empty.safetensors");
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("before", Tensor.of(new float[] {7}, 1));
    tensors.put("none", Tensor.of(new float[0], 3, 0, 2));
    tensors.put("after", Tensor.of(new float[] {8}, 1));
    Safetensors.write(file, tensors, Map.of());

    SafetensorsFile read = Safetensors.read(file);

    assertArrayEquals(new int[] {3, 0, 2}, read.tensor("none").shape());
    assertEquals(0, read.tensor("none").numel());
    assertArrayEquals(new float[] {8}, read.tensor("after").toFloatArray());
  }

  @Test
  void headerIsPaddedToEightBytes() throws Exception {
    // Names of 1 to 8 characters move the JSON length through every remainder modulo 8.
    for (int length = 1; length <= 8; length++) {
      Path file = folder.resolve("pad" + length + ".safetensors");
      Safetensors.write(file, Map.of("n".repeat(length), Tensor.of(new float[] {1}, 1)), Map.of());

      long headerLength = headerLength(file);
      String header = headerText(file);

      assertEquals(0, headerLength % 8, "header length " + headerLength);
      String padding = header.substring(header.stripTrailing().length());
      assertEquals(" ".repeat(padding.length()), padding);
      assertTrue(padding.length() < 8, "padding of " + padding.length() + " bytes");
      assertEquals(8 + headerLength + 4, Files.size(file));
    }
  }

  @Test
  void writeKeepsMapOrder() throws Exception {
    List<String> names = List.of("zeta", "alpha", "mid", "0.weight", "beta");
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      tensors.put(names.get(i), Tensor.of(new double[] {i, -i}, 2));
    }
    Path file = folder.resolve("order.safetensors");
    Safetensors.write(file, tensors, Map.of());

    SafetensorsFile read = Safetensors.read(file);
    List<Long> begins = new ArrayList<>();
    for (Object entry : ((Map<?, ?>) Json.parse(headerText(file))).values()) {
      begins.add((Long) ((List<?>) ((Map<?, ?>) entry).get("data_offsets")).get(0));
    }

    assertEquals(names, read.names());
    assertEquals(List.of(0L, 16L, 32L, 48L, 64L), begins);
    assertArrayEquals(new double[] {3, -3}, read.tensor("0.weight").toDoubleArray());
  }

  @Test
  void writeReplacesExistingFile() throws Exception {
    Path file = folder.resolve("replace.safetensors");
    Safetensors.write(file, Map.of("old", Tensor.of(new float[] {1}, 1)), Map.of());

    Safetensors.write(file, Map.of("new", Tensor.of(new float[] {2}, 1)), Map.of());

    assertEquals(List.of("new"), Safetensors.read(file).names());
  }

  @Test
  void writeRejectsReservedName() {
    Path file = folder.resolve("reserved.safetensors");
    Map<String, Tensor> tensors = Map.of("__metadata__", Tensor.of(new float[] {1}, 1));

    var e =
        assertThrows(
            IllegalArgumentException.class, () -> Safetensors.write(file, tensors, Map.of()));

    assertTrue(e.getMessage().contains("reserved"), e.getMessage());
  }

  @Test
  void writeRejectsUnpairedSurrogateName() {
    Path file = folder.resolve("surrogate.safetensors");
    Map<String, Tensor> tensors = Map.of("bad\ud800", Tensor.of(new float[] {1}, 1));

    var e =
        assertThrows(
            IllegalArgumentException.class, () -> Safetensors.write(file, tensors, Map.of()));

    assertTrue(e.getMessage().contains("unpaired surrogate"), e.getMessage());
  }

  @Test
  void writeRejectsClosedTensor() {
    Path file = folder.resolve("closed.safetensors");
    Tensor closed = Tensor.of(new float[] {1, 2}, 2);
    closed.close();

    var e =
        assertThrows(
            IllegalStateException.class,
            () -> Safetensors.write(file, Map.of("c", closed), Map.of()));

    assertTrue(e.getMessage().contains("was closed"), e.getMessage());
  }

  @Test
  void shapeReadsWithoutData() throws Exception {
    Path file = folder.resolve("shape.safetensors");
    Safetensors.write(file, Map.of("w", Tensor.of(new float[6], 2, 3)), Map.of());

    SafetensorsFile read = Safetensors.read(file);

    assertArrayEquals(new int[] {2, 3}, read.shape("w"));
    assertTrue(read.contains("w"));
    assertTrue(!read.contains("b"));
  }

  @Test
  void largeTensorSpansSeveralChunks() throws Exception {
    // 600,000 doubles are 4.8 MB, so reading and writing take several 1 MiB chunks.
    double[] values = new double[600_000];
    for (int i = 0; i < values.length; i++) {
      values[i] = i * 0.25 - 7;
    }
    Path file = folder.resolve("large.safetensors");
    Safetensors.write(file, Map.of("big", Tensor.of(values, 600, 1000)), Map.of());

    assertArrayEquals(values, Safetensors.read(file).tensor("big").toDoubleArray());
  }

  static long headerLength(Path file) throws Exception {
    byte[] bytes = Files.readAllBytes(file);
    return ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }

  static String headerText(Path file) throws Exception {
    byte[] bytes = Files.readAllBytes(file);
    return new String(bytes, 8, (int) headerLength(file), StandardCharsets.UTF_8);
  }

  private static int[] floatBits(float[] values) {
    int[] bits = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      bits[i] = Float.floatToRawIntBits(values[i]);
    }
    return bits;
  }

  private static long[] doubleBits(double[] values) {
    long[] bits = new long[values.length];
    for (int i = 0; i < values.length; i++) {
      bits[i] = Double.doubleToRawLongBits(values[i]);
    }
    return bits;
  }
}
