package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each invalid file gets its own test, which checks that the message names file and problem. */
class SafetensorsMalformedTest {
  @TempDir Path folder;

  private static final String VALID_ENTRY =
      "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

  /** Writes {@code header} and {@code data} and returns the exception that reading it raises. */
  private SafetensorsException readFails(String header, byte[] data) throws Exception {
    Path file = RawSafetensors.write(folder, "bad.safetensors", header, data);
    return readFails(file);
  }

  private static SafetensorsException readFails(Path file) {
    var e = assertThrows(SafetensorsException.class, () -> Safetensors.read(file));
    assertEquals(file, e.file());
    assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    return e;
  }

  private static void assertMentions(Exception e, String text) {
    assertTrue(e.getMessage().contains(text), () -> "'" + text + "' not in: " + e.getMessage());
  }

  @Test
  void fileShorterThanEightBytes() throws Exception {
    Path file = Files.write(folder.resolve("short.safetensors"), new byte[] {1, 2, 3});

    assertMentions(readFails(file), "fewer than the 8-byte header length");
  }

  @Test
  void folderIsRejectedByName() throws Exception {
    Path run = Files.createDirectories(folder.resolve("run"));

    SafetensorsException e = readFails(run);

    assertMentions(e, "is a folder, not a safetensors file");
    assertTrue(e.getMessage().startsWith(run.toString()), e.getMessage());
  }

  @Test
  void emptyFileIsRejected() throws Exception {
    Path file = Files.write(folder.resolve("empty.safetensors"), new byte[0]);

    assertMentions(readFails(file), "file has 0 bytes");
  }

  @Test
  void headerLengthBeyondFileEnd() throws Exception {
    byte[] header = "{}".getBytes(StandardCharsets.UTF_8);
    Path file =
        Files.write(
            folder.resolve("long.safetensors"), RawSafetensors.bytes(50, header, new byte[0]));

    SafetensorsException e = readFails(file);

    assertMentions(e, "header length 50 bytes is larger than the 2 bytes");
    assertMentions(e, "truncated");
  }

  @Test
  void headerLengthAbsurdlyLarge() throws Exception {
    byte[] bytes = RawSafetensors.bytes(200L << 20, new byte[0], new byte[16]);
    Path file = Files.write(folder.resolve("absurd.safetensors"), bytes);

    assertMentions(readFails(file), "exceeds the limit of 104857600 bytes");
  }

  @Test
  void headerLengthAboveTwoToSixtyThree() throws Exception {
    byte[] bytes = RawSafetensors.bytes(-1L, new byte[0], new byte[16]);
    Path file = Files.write(folder.resolve("unsigned.safetensors"), bytes);

    assertMentions(readFails(file), "header length 18446744073709551615 bytes exceeds");
  }

  @Test
  void headerNotValidJson() throws Exception {
    SafetensorsException e = readFails("{\"x\": {\"dtype\" \"F32\"}}", new byte[0]);

    assertMentions(e, "header JSON is invalid");
    assertMentions(e, "expected ':' at character 15");
  }

  @Test
  void headerWithTrailingGarbage() throws Exception {
    SafetensorsException e = readFails("{" + VALID_ENTRY + "} }", new byte[8]);

    assertMentions(e, "unexpected content after the JSON value");
  }

  @Test
  void headerNotValidUtf8() throws Exception {
    byte[] header = {'{', '"', (byte) 0xC3, '"', ':', '1', '}'};
    byte[] bytes = RawSafetensors.bytes(header.length, header, new byte[0]);
    Path file = Files.write(folder.resolve("latin1.safetensors"), bytes);

    assertMentions(readFails(file), "header is not valid UTF-8 near byte 2");
  }

  @Test
  void headerNotAnObject() throws Exception {
    assertMentions(
        readFails("[1, 2]", new byte[0]), "header must be a JSON object but is an array");
  }

  @Test
  void entryNotAnObject() throws Exception {
    assertMentions(readFails("{\"x\": 3}", new byte[0]), "tensor \"x\" must be a JSON object");
  }

  @Test
  void missingDtypeField() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]);

    assertMentions(e, "tensor \"x\" is missing the field \"dtype\"");
  }

  @Test
  void missingShapeField() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", new byte[4]);

    assertMentions(e, "tensor \"x\" is missing the field \"shape\"");
  }

  @Test
  void missingDataOffsetsField() throws Exception {
    SafetensorsException e = readFails("{\"x\":{\"dtype\":\"F32\",\"shape\":[]}}", new byte[4]);

    assertMentions(e, "tensor \"x\" is missing the field \"data_offsets\"");
  }

  @Test
  void shapeWrongType() throws Exception {
    SafetensorsException e =
        readFails(
            "{\"x\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", new byte[8]);

    assertMentions(e, "field \"shape\" must be an array but is a string");
  }

  @Test
  void dtypeWrongType() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]);

    assertMentions(e, "field \"dtype\" must be a string but is a number");
  }

  @Test
  void shapeWithNegativeSize() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", new byte[8]);

    assertMentions(e, "tensor \"x\" shape must contain integers from 0 to 2147483647");
  }

  @Test
  void shapeWithFractionalSize() throws Exception {
    SafetensorsException e =
        readFails(
            "{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", new byte[8]);

    assertMentions(e, "but contains 2.5");
  }

  @Test
  void dataOffsetsWrongLength() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", new byte[8]);

    assertMentions(e, "data_offsets must have 2 numbers [begin, end] but has 1");
  }

  @Test
  void dataOffsetsBeginAfterEnd() throws Exception {
    SafetensorsException e =
        readFails("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", new byte[8]);

    assertMentions(e, "data_offsets [8, 4] has begin after end");
  }

  @Test
  void unknownDtypeName() throws Exception {
    SafetensorsException e =
        readFails(
            "{\"x\":{\"dtype\":\"F128\",\"shape\":[],\"data_offsets\":[0,16]}}", new byte[16]);

    assertMentions(e, "unknown dtype \"F128\"");
    assertMentions(e, "BF16");
  }

  @Test
  void elementCountMismatchesByteLength() throws Exception {
    SafetensorsException e =
        readFails(
            "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[20]);

    assertMentions(
        e, "shape [2, 3] and dtype F32 needs 24 bytes but its data_offsets cover 20 bytes");
  }

  @Test
  void elementCountOverflowsLong() throws Exception {
    String shape = "[2147483647,2147483647,2147483647,2147483647]";
    SafetensorsException e =
        readFails(
            "{\"x\":{\"dtype\":\"F64\",\"shape\":" + shape + ",\"data_offsets\":[0,8]}}",
            new byte[8]);

    assertMentions(e, "needs more than 2^63 bytes");
  }

  @Test
  void offsetsOutsideDataSection() throws Exception {
    SafetensorsException e = readFails("{" + VALID_ENTRY + "}", new byte[6]);

    assertMentions(e, "data_offsets [0, 8] end outside the data section of 6 bytes");
  }

  @Test
  void offsetsOverlap() throws Exception {
    String header =
        "{" + VALID_ENTRY + ",\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";

    SafetensorsException e = readFails(header, new byte[12]);

    assertMentions(e, "tensors \"x\" [0, 8] and \"y\" [4, 12] overlap");
  }

  @Test
  void emptyRangeInsideAnotherIsAccepted() throws Exception {
    String header =
        "{" + VALID_ENTRY + ",\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}";
    Path file = RawSafetensors.write(folder, "ok.safetensors", header, new byte[8]);

    assertEquals(0, Safetensors.read(file).tensor("e").numel());
  }

  @Test
  void duplicateTensorName() throws Exception {
    SafetensorsException e = readFails("{" + VALID_ENTRY + "," + VALID_ENTRY + "}", new byte[8]);

    assertMentions(e, "duplicate key \"x\"");
  }

  @Test
  void metadataValueNotString() throws Exception {
    SafetensorsException e =
        readFails("{\"__metadata__\":{\"epoch\":3}," + VALID_ENTRY + "}", new byte[8]);

    assertMentions(e, "value of key \"epoch\" must be a string but is a number");
  }

  @Test
  void metadataNotAnObject() throws Exception {
    SafetensorsException e =
        readFails("{\"__metadata__\":[\"a\"]," + VALID_ENTRY + "}", new byte[8]);

    assertMentions(e, "__metadata__ must be a JSON object of strings but is an array");
  }

  @Test
  void unknownTensorNameListsNames() throws Exception {
    Path file =
        RawSafetensors.write(folder, "names.safetensors", "{" + VALID_ENTRY + "}", new byte[8]);
    SafetensorsFile read = Safetensors.read(file);

    var e = assertThrows(SafetensorsException.class, () -> read.tensor("weight"));

    assertMentions(e, file.toString());
    assertMentions(e, "no tensor named \"weight\"; the file has 1 tensors, e.g. x");
  }

  @Test
  void unsupportedDtypeNamesTensorAndFile() throws Exception {
    String header = "{\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}";
    Path file = RawSafetensors.write(folder, "int.safetensors", header, new byte[8]);
    SafetensorsFile read = Safetensors.read(file);

    var e = assertThrows(SafetensorsException.class, () -> read.tensor("step"));

    assertMentions(e, file.toString());
    assertMentions(e, "tensor \"step\" has dtype I64, which kiln does not read");
    assertMentions(e, "kiln reads F32, F64, F16 and BF16");
  }

  @Test
  void fileChangedAfterRead() throws Exception {
    Path file = folder.resolve("changing.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), Map.of());
    SafetensorsFile read = Safetensors.read(file);
    Safetensors.write(file, Map.of("x", Tensor.of(new double[] {1, 2}, 2)), Map.of());

    var e = assertThrows(SafetensorsException.class, () -> read.tensor("x"));

    assertMentions(e, "file changed since Safetensors.read opened it");
  }

  @Test
  void fileReplacedBySameLayoutAfterRead() throws Exception {
    Path file = folder.resolve("renamed.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), Map.of());
    FileTime opened = Files.getLastModifiedTime(file);
    Object oldKey = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
    SafetensorsFile read = Safetensors.read(file);

    // The write renames a new file over the old one, and the old time is put back, so that only
    // the file key differs.
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {3, 4}, 2)), Map.of());
    Files.setLastModifiedTime(file, opened);
    assertNotEquals(oldKey, Files.readAttributes(file, BasicFileAttributes.class).fileKey());

    var e = assertThrows(SafetensorsException.class, () -> read.tensor("x"));

    assertMentions(e, file.toString());
    assertMentions(e, "file changed since Safetensors.read opened it");
  }

  @Test
  void fileRewrittenInPlaceAfterRead() throws Exception {
    Path file = folder.resolve("rewritten.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), Map.of());
    Object oldKey = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
    FileTime opened = Files.getLastModifiedTime(file);
    SafetensorsFile read = Safetensors.read(file);
    Path other = folder.resolve("other.safetensors");
    Safetensors.write(other, Map.of("x", Tensor.of(new float[] {3, 4}, 2)), Map.of());

    // Files.write truncates and rewrites the same file. The time is moved forward by hand, because
    // a rewrite within one tick of the file system's clock keeps the old time.
    Files.write(file, Files.readAllBytes(other));
    Files.setLastModifiedTime(file, FileTime.fromMillis(opened.toMillis() + 1000));
    assertEquals(oldKey, Files.readAttributes(file, BasicFileAttributes.class).fileKey());

    var e = assertThrows(SafetensorsException.class, () -> read.tensor("x"));

    assertMentions(e, "file changed since Safetensors.read opened it");
  }

  @Test
  void unchangedFileReadsAfterAnotherWrite() throws Exception {
    Path file = folder.resolve("stable.safetensors");
    Safetensors.write(file, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), Map.of());
    SafetensorsFile read = Safetensors.read(file);
    Safetensors.write(folder.resolve("other.safetensors"), Map.of(), Map.of());

    assertArrayEquals(new float[] {1, 2}, read.tensor("x").toFloatArray());
    assertArrayEquals(new float[] {1, 2}, read.tensor("x").toFloatArray());
  }

  @Test
  void missingFileRaisesNoSuchFile() {
    Path file = folder.resolve("absent.safetensors");

    var e = assertThrows(java.nio.file.NoSuchFileException.class, () -> Safetensors.read(file));

    assertMentions(e, file.toString());
  }
}
