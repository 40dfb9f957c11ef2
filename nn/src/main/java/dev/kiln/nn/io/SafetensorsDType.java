package dev.kiln.nn.io;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Element types that a safetensors header may name, with their size in bytes. Kiln validates the
 * byte ranges of all of them but converts only the floating-point ones it lists as readable.
 */
enum SafetensorsDType {
  BOOL(1),
  U8(1),
  I8(1),
  F8_E5M2(1),
  F8_E4M3(1),
  F8_E8M0(1),
  I16(2),
  U16(2),
  F16(2),
  BF16(2),
  I32(4),
  U32(4),
  F32(4),
  I64(8),
  U64(8),
  F64(8),
  C64(8);

  /** Readable dtypes as a phrase for error messages. */
  static final String READABLE = "F32, F64, F16 and BF16 (F16 and BF16 are widened to float32)";

  private final int byteSize;

  SafetensorsDType(int byteSize) {
    this.byteSize = byteSize;
  }

  /** Returns the size of one element in bytes. */
  int byteSize() {
    return byteSize;
  }

  /** Returns whether kiln converts this dtype into a float32 or float64 tensor. */
  boolean readable() {
    return this == F32 || this == F64 || this == F16 || this == BF16;
  }

  /** Returns the dtype with this exact header name, or null if there is none. */
  static SafetensorsDType fromName(String name) {
    for (SafetensorsDType dtype : values()) {
      if (dtype.name().equals(name)) {
        return dtype;
      }
    }
    return null;
  }

  /** Returns all header names, comma-separated, for error messages. */
  static String allNames() {
    return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
  }
}
