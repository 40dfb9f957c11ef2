package dev.kiln.keypoints.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextFilesTest {
  private static final String ADVICE =
      ". Expected a test file in UTF-8 text: if this is the right file, save it again as UTF-8,"
          + " else pass the right file";

  @TempDir Path dir;

  /**
   * A file of more than one 64 KiB chunk, with a two-byte character across the first chunk's end,
   * so that the incomplete sequence must carry over, and the invalid byte in the second chunk.
   */
  @Test
  void invalidByteAfterChunkBoundary() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int lines = 0;
    while (bytes.size() < 65535 - 10) {
      bytes.writeBytes("abcdefghi\n".getBytes(StandardCharsets.US_ASCII));
      lines++;
    }
    while (bytes.size() < 65535) {
      bytes.write('x');
    }
    // U+00E9 in UTF-8: its first byte is the chunk's last, its second the next chunk's first.
    bytes.write(0xC3);
    bytes.write(0xA9);
    bytes.writeBytes("\nok\n".getBytes(StandardCharsets.US_ASCII));
    int invalidOffset = bytes.size() + 2;
    bytes.writeBytes("ab".getBytes(StandardCharsets.US_ASCII));
    bytes.write(0xE9);
    Path file = dir.resolve("big.txt");
    Files.write(file, bytes.toByteArray());
    MalformedInputException cause = new MalformedInputException(1);

    IOException error = TextFiles.notUtf8(file, "a test file", cause);

    int line = lines + 3;
    assertEquals(
        file
            + ": line "
            + line
            + " is not valid UTF-8 (byte 0xE9 at offset "
            + invalidOffset
            + ")"
            + ADVICE,
        error.getMessage());
    assertSame(cause, error.getCause());
  }

  /**
   * Lines that end in a lone carriage return, the line end of classic Mac OS, count as the CSV
   * reader counts them.
   */
  @Test
  void carriageReturnEndsLine() throws IOException {
    Path file = dir.resolve("mac.csv");
    byte[] text = "Names,0\rf.jpg,1\rJos".getBytes(StandardCharsets.US_ASCII);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.writeBytes(text);
    bytes.write(0x8E); // e with acute accent in the Mac OS Roman encoding
    Files.write(file, bytes.toByteArray());

    IOException error = TextFiles.notUtf8(file, "a test file", new MalformedInputException(1));

    assertEquals(
        file + ": line 3 is not valid UTF-8 (byte 0x8E at offset " + text.length + ")" + ADVICE,
        error.getMessage());
  }

  /** A CRLF line end whose two bytes fall in two chunks counts as one line end. */
  @Test
  void crlfAcrossChunkBoundaryCountsOnce() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    while (bytes.size() < 65535) {
      bytes.write('x');
    }
    // The chunk's last byte is the carriage return, and the next chunk starts with the line feed.
    bytes.write('\r');
    bytes.write('\n');
    int invalidOffset = bytes.size();
    bytes.write(0xFF);
    Path file = dir.resolve("crlf.txt");
    Files.write(file, bytes.toByteArray());

    IOException error = TextFiles.notUtf8(file, "a test file", new MalformedInputException(1));

    assertEquals(
        file + ": line 2 is not valid UTF-8 (byte 0xFF at offset " + invalidOffset + ")" + ADVICE,
        error.getMessage());
  }

  /** A file that ends inside a multi-byte character is not valid UTF-8 either. */
  @Test
  void truncatedCharacterAtEnd() throws IOException {
    Path file = dir.resolve("cut.txt");
    Files.write(file, new byte[] {'a', '\n', (byte) 0xE2, (byte) 0x82});

    IOException error = TextFiles.notUtf8(file, "a test file", new MalformedInputException(2));

    assertEquals(
        file + ": line 2 is not valid UTF-8 (byte 0xE2 at offset 2)" + ADVICE, error.getMessage());
  }

  /** A file fixed between the failed read and the search gets a message that states it. */
  @Test
  void validFileSaysItDecodesNow() throws IOException {
    Path file = dir.resolve("fine.txt");
    Files.writeString(file, "caf" + (char) 0xE9 + "\n");

    IOException error = TextFiles.notUtf8(file, "a test file", new MalformedInputException(1));

    assertTrue(error.getMessage().contains("but decodes now"), error.getMessage());
  }

  @Test
  void deletedFileNamesDeletion() {
    Path file = dir.resolve("gone.csv");

    IOException error = TextFiles.notUtf8(file, "a test file", new MalformedInputException(1));

    assertEquals(
        file
            + ": is not valid UTF-8, and was deleted before the invalid byte could be found"
            + ADVICE,
        error.getMessage());
  }
}
