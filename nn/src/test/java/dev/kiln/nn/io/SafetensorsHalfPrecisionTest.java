package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsHalfPrecisionTest {
  @TempDir Path folder;

  private float[] readAll(String dtype, int... bits) throws Exception {
    String header =
        "{\"x\":{\"dtype\":\""
            + dtype
            + "\",\"shape\":["
            + bits.length
            + "],\"data_offsets\":[0,"
            + 2 * bits.length
            + "]}}";
    Path file =
        RawSafetensors.write(folder, dtype + ".safetensors", header, RawSafetensors.shorts(bits));

    Tensor tensor = Safetensors.read(file).tensor("x");

    assertEquals(DType.FLOAT32, tensor.dtype());
    return tensor.storage().floats();
  }

  @Test
  void f16DecodesOne() throws Exception {
    assertEquals(1.0f, readAll("F16", 0x3C00)[0]);
  }

  @Test
  void f16DecodesMinusTwo() throws Exception {
    assertEquals(-2.0f, readAll("F16", 0xC000)[0]);
  }

  @Test
  void f16DecodesLargestFinite() throws Exception {
    // 0x7BFF: exponent 30 - 15 = 15, mantissa 1023/1024, so (2 - 2^-10) * 2^15.
    assertEquals(65504f, readAll("F16", 0x7BFF)[0]);
  }

  @Test
  void f16DecodesSmallestSubnormal() throws Exception {
    // 0x0001: subnormal with mantissa 1, so 1 * 2^-24.
    assertEquals(0x1p-24f, readAll("F16", 0x0001)[0]);
  }

  @Test
  void f16DecodesLargestSubnormal() throws Exception {
    assertEquals(1023 * 0x1p-24f, readAll("F16", 0x03FF)[0]);
  }

  @Test
  void f16DecodesSignedZeroAndInfinities() throws Exception {
    float[] values = readAll("F16", 0x8000, 0x7C00, 0xFC00);

    assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(values[0]));
    assertEquals(Float.POSITIVE_INFINITY, values[1]);
    assertEquals(Float.NEGATIVE_INFINITY, values[2]);
  }

  @Test
  void f16DecodesNaN() throws Exception {
    assertTrue(Float.isNaN(readAll("F16", 0x7E00)[0]));
  }

  @Test
  void f16DecodesEveryBitPattern() throws Exception {
    int[] bits = new int[1 << 16];
    for (int i = 0; i < bits.length; i++) {
      bits[i] = i;
    }

    float[] values = readAll("F16", bits);

    for (int i = 0; i < bits.length; i++) {
      float expected = decodeHalfByHand(i);
      if (Float.isNaN(expected)) {
        assertTrue(Float.isNaN(values[i]), "bits 0x" + Integer.toHexString(i));
      } else {
        assertEquals(
            Float.floatToRawIntBits(expected),
            Float.floatToRawIntBits(values[i]),
            "bits 0x" + Integer.toHexString(i));
      }
    }
  }

  /** Decodes IEEE 754 binary16 from its definition: sign, 5-bit exponent, 10-bit mantissa. */
  private static float decodeHalfByHand(int bits) {
    int sign = (bits >> 15) & 1;
    int exponent = (bits >> 10) & 0x1F;
    int mantissa = bits & 0x3FF;
    double magnitude;
    if (exponent == 0) {
      magnitude = mantissa * Math.pow(2, -24);
    } else if (exponent == 31) {
      magnitude = mantissa == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
    } else {
      magnitude = (1 + mantissa / 1024.0) * Math.pow(2, exponent - 15);
    }
    return (float) (sign == 1 ? -magnitude : magnitude);
  }

  @Test
  void bf16DecodesOne() throws Exception {
    assertEquals(1.0f, readAll("BF16", 0x3F80)[0]);
  }

  @Test
  void bf16DecodesMinusTwo() throws Exception {
    assertEquals(-2.0f, readAll("BF16", 0xC000)[0]);
  }

  @Test
  void bf16DecodesNearF16Maximum() throws Exception {
    // 0x477F: exponent 142 - 127 = 15, mantissa 127/128, so (2 - 2^-7) * 2^15 = 65280.
    assertEquals(65280f, readAll("BF16", 0x477F)[0]);
  }

  @Test
  void bf16DecodesLargestFinite() throws Exception {
    assertEquals((2 - 0x1p-7f) * 0x1p127f, readAll("BF16", 0x7F7F)[0]);
  }

  @Test
  void bf16DecodesSmallestSubnormal() throws Exception {
    // 0x0001: float32 subnormal with mantissa bit 16 set, so 2^16 * 2^-149 = 2^-133.
    assertEquals(0x1p-133f, readAll("BF16", 0x0001)[0]);
  }

  @Test
  void bf16DecodesInfinities() throws Exception {
    float[] values = readAll("BF16", 0x7F80, 0xFF80);

    assertEquals(Float.POSITIVE_INFINITY, values[0]);
    assertEquals(Float.NEGATIVE_INFINITY, values[1]);
  }

  @Test
  void bf16DecodesNaN() throws Exception {
    assertTrue(Float.isNaN(readAll("BF16", 0x7FC0)[0]));
  }
}
