package dev.kiln.keypoints.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Explains why a text file that a user wrote, such as a keypoint CSV or a model file, failed to
 * decode as UTF-8. Java's decoder reports only "Input length = 1". {@link #notUtf8} finds the first
 * byte that is not UTF-8 and names the file, its line and the byte.
 */
public final class TextFiles {

  /** Bytes read from the file at a time while looking for the invalid one. */
  private static final int CHUNK_BYTES = 64 * 1024;

  private TextFiles() {}

  /**
   * Returns the exception to throw in place of {@code cause}, which a UTF-8 reader of {@code file}
   * threw. Its message names the line and offset of the first byte that is not UTF-8, and the fix.
   * Where the file cannot be read again, or now decodes, the message states that instead.
   *
   * @param expected the kind of file expected, such as "a keypoint CSV file"
   */
  public static IOException notUtf8(Path file, String expected, CharacterCodingException cause) {
    String advice =
        ". Expected "
            + expected
            + " in UTF-8 text: if this is the right file, save it again as UTF-8, else pass the"
            + " right file";
    String where;
    try {
      where = firstInvalidByte(file);
    } catch (NoSuchFileException e) {
      where = "is not valid UTF-8, and was deleted before the invalid byte could be found";
    } catch (IOException e) {
      where =
          "is not valid UTF-8, and could not be read again to find the invalid byte (" + e + ")";
    }
    IOException exception = new IOException(file + ": " + where + advice);
    exception.initCause(cause);
    return exception;
  }

  /**
   * Describes the first byte of {@code file} that is not UTF-8, or reports that there is none.
   * Reads the file in chunks, so that a large file that is not text costs no more memory than a
   * small one.
   */
  private static String firstInvalidByte(Path file) throws IOException {
    CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder();
    ByteBuffer bytes = ByteBuffer.allocate(CHUNK_BYTES);
    CharBuffer chars = CharBuffer.allocate(CHUNK_BYTES);
    long offset = 0; // bytes before the start of the buffer
    long line = 1;
    boolean afterCarriageReturn = false; // whether the last byte counted was '\r'
    try (InputStream in = Files.newInputStream(file)) {
      boolean end = false;
      while (!end) {
        int read = in.read(bytes.array(), bytes.position(), bytes.remaining());
        end = read < 0;
        bytes.position(bytes.position() + Math.max(read, 0));
        bytes.flip();
        CoderResult result = decoder.decode(bytes, chars, end);
        // Bytes before the buffer's position decoded, so their line ends count. A line ends at
        // "\n", "\r\n" or a lone "\r", as BufferedReader.readLine, which reads the CSV, counts.
        for (int i = 0; i < bytes.position(); i++) {
          byte b = bytes.get(i);
          if (b == '\r' || (b == '\n' && !afterCarriageReturn)) {
            line++;
          }
          afterCarriageReturn = b == '\r';
        }
        if (result.isError()) {
          long at = offset + bytes.position();
          return String.format(
              "line %d is not valid UTF-8 (byte 0x%02X at offset %d)",
              line, bytes.get(bytes.position()) & 0xFF, at);
        }
        offset += bytes.position();
        // An incomplete sequence at the end of the chunk moves to the front, to end the next one.
        bytes.compact();
        chars.clear();
      }
    }
    return "failed to decode as UTF-8, but decodes now; it may have changed while it was read";
  }
}
