package dev.kiln.keypoints.data;

import java.nio.charset.StandardCharsets;

/** Descriptions of what a file's first bytes look like, for error messages about unknown files. */
final class FileSignatures {

  private FileSignatures() {}

  /** Returns a short phrase such as "looks like a GIF image" for the start of {@code bytes}. */
  static String describe(byte[] bytes) {
    String ascii = new String(bytes, 0, Math.min(bytes.length, 64), StandardCharsets.ISO_8859_1);

    if (ascii.startsWith("GIF87a") || ascii.startsWith("GIF89a")) {
      return "looks like a GIF image";
    }
    if (ascii.startsWith("BM")) {
      return "looks like a BMP image";
    }
    if (ascii.startsWith("II*\0") || ascii.startsWith("MM\0*")) {
      return "looks like a TIFF image";
    }
    if (ascii.startsWith("RIFF") && ascii.length() >= 12 && ascii.startsWith("WEBP", 8)) {
      return "looks like a WebP image";
    }
    if (ascii.startsWith("version https://git-lfs")) {
      return "looks like a Git LFS pointer, so the real file was never downloaded; run git lfs pull";
    }
    if (isText(bytes)) {
      String start = ascii.lines().findFirst().orElse("");
      if (start.length() > 40) {
        start = start.substring(0, 40) + "...";
      }
      return "looks like text starting with \"" + start + "\"";
    }
    return "first bytes " + hex(bytes, 8);
  }

  private static boolean isText(byte[] bytes) {
    int n = Math.min(bytes.length, 512);
    for (int i = 0; i < n; i++) {
      int b = bytes[i] & 0xff;
      boolean printable = b >= 0x20 && b < 0x7f;
      if (!printable && b != '\n' && b != '\r' && b != '\t') {
        return false;
      }
    }
    return true;
  }

  private static String hex(byte[] bytes, int count) {
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < Math.min(bytes.length, count); i++) {
      if (i > 0) {
        text.append(' ');
      }
      text.append(String.format("%02X", bytes[i] & 0xff));
    }
    return text.toString();
  }
}
