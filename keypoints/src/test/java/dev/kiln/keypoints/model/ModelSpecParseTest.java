package dev.kiln.keypoints.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parsing of the model text format, and its error messages. */
class ModelSpecParseTest {
  private static final String SOURCE = "test.model";

  /** A valid model that {@link #withLine} puts one line into, after the convolution. */
  private static final String HEAD = "input 1x8x8\nconv 4 kernel=3\n";

  private static final String TAIL = "flatten\nlinear 136\n";

  private static String withLine(String line) {
    return HEAD + line + "\n" + TAIL;
  }

  /** Parses {@code text}, expects a failure at {@code line}, and returns the message. */
  private static String parseError(String text, int line) {
    ModelFormatException error =
        assertThrows(ModelFormatException.class, () -> ModelSpec.parse(text, SOURCE));
    assertEquals(line, error.line(), error.getMessage());
    assertTrue(
        error.getMessage().startsWith(SOURCE + ":" + line + ": "),
        "message should start with the source and line: " + error.getMessage());
    return error.getMessage();
  }

  private static void assertContains(String message, String expected) {
    assertTrue(message.contains(expected), "expected '" + expected + "' in: " + message);
  }

  @Test
  void parseSkipsCommentsAndBlankLines() {
    String text =
        """
        # a model with comments

        input 1x8x8   # one gray channel
           \t
        flatten       # 64 features
        # between layers
        linear 136
        """;

    ModelSpec spec = ModelSpec.parse(text, SOURCE);

    assertEquals(
        List.of(new Layer.Flatten(), new Layer.Linear(136, true, WeightInit.DEFAULT)),
        spec.layers());
  }

  @Test
  void parseReadsEveryConvSetting() {
    ModelSpec spec =
        ModelSpec.parse(
            withLine(
                "conv 6 kernel=3 stride=2 padding=1 dilation=2 bias=false init=kaiming_normal"),
            SOURCE);

    assertEquals(
        new Layer.Conv(6, 3, 2, 1, 2, false, WeightInit.KAIMING_NORMAL), spec.layers().get(1));
  }

  @Test
  void parseDefaultsPoolStrideToKernel() {
    ModelSpec spec = ModelSpec.parse(withLine("maxpool 2"), SOURCE);

    assertEquals(new Layer.MaxPool(2, 2, 0), spec.layers().get(1));
  }

  @Test
  void parseReadsAvgPoolSettings() {
    ModelSpec spec = ModelSpec.parse(withLine("avgpool 3 stride=1 padding=1"), SOURCE);

    assertEquals(new Layer.AvgPool(3, 1, 1), spec.layers().get(1));
  }

  @Test
  void parseReadsActivationParameters() {
    ModelSpec spec =
        ModelSpec.parse(
            withLine("leaky_relu slope=0.2\nelu alpha=0.5\ntanh\nsigmoid\nrelu"), SOURCE);

    assertEquals(new Layer.Activation("leaky_relu", 0.2), spec.layers().get(1));
    assertEquals(new Layer.Activation("elu", 0.5), spec.layers().get(2));
    assertEquals(new Layer.Activation("tanh", 0), spec.layers().get(3));
    assertEquals(new Layer.Activation("sigmoid", 0), spec.layers().get(4));
    assertEquals(new Layer.Activation("relu", 0), spec.layers().get(5));
  }

  @Test
  void parseReadsBatchNormSettings() {
    ModelSpec spec = ModelSpec.parse(withLine("batchnorm eps=0.001 momentum=0.01"), SOURCE);

    assertEquals(new Layer.BatchNorm(0.001, 0.01), spec.layers().get(1));
  }

  @Test
  void unknownLayerListsValidLayers() {
    String message = parseError(withLine("convolution 8 kernel=3"), 3);

    assertContains(message, "unknown layer 'convolution'");
    assertContains(message, "conv, linear, maxpool, avgpool, batchnorm, dropout, flatten");
  }

  @Test
  void unknownKeyListsValidKeys() {
    String message = parseError(withLine("conv 8 kernel=3 strides=2"), 3);

    assertContains(message, "unknown key 'strides'");
    assertContains(message, "kernel, stride, padding, dilation, bias, init");
  }

  @Test
  void settingOnKeylessLayerIsRejected() {
    String message = parseError(withLine("relu inplace=true"), 3);

    assertContains(message, "relu takes no settings");
  }

  @Test
  void settingWithoutValueIsMalformed() {
    String message = parseError(withLine("conv 8 kernel="), 3);

    assertContains(message, "malformed setting 'kernel='");
  }

  @Test
  void settingWithoutKeyIsMalformed() {
    String message = parseError(withLine("conv 8 =3"), 3);

    assertContains(message, "malformed setting '=3'");
  }

  @Test
  void uppercaseKeyIsMalformed() {
    String message = parseError(withLine("conv 8 Kernel=3"), 3);

    assertContains(message, "write key=value");
  }

  @Test
  void repeatedKeyIsRejected() {
    String message = parseError(withLine("conv 8 kernel=3 kernel=5"), 3);

    assertContains(message, "'kernel' is given twice");
  }

  @Test
  void valueAfterSettingsIsRejected() {
    String message = parseError(withLine("conv 8 kernel=3 2"), 3);

    assertContains(message, "unexpected value '2' after the settings");
  }

  @Test
  void convWithoutChannelsIsRejected() {
    String message = parseError(withLine("conv kernel=3"), 3);

    assertContains(message, "conv takes one value, the channels");
  }

  @Test
  void convWithTwoValuesIsRejected() {
    String message = parseError(withLine("conv 8 3"), 3);

    assertContains(message, "but got 2: 8 3");
  }

  @Test
  void convWithoutKernelIsRejected() {
    String message = parseError(withLine("conv 8 stride=2"), 3);

    assertContains(message, "add kernel=K");
  }

  @Test
  void zeroStrideIsOutOfRange() {
    String message = parseError(withLine("conv 8 kernel=3 stride=0"), 3);

    assertContains(message, "invalid conv stride 0: it must be at least 1");
  }

  @Test
  void negativePaddingIsInvalid() {
    String message = parseError(withLine("conv 8 kernel=3 padding=-1"), 3);

    assertContains(message, "invalid conv padding '-1'");
  }

  @Test
  void hugeChannelCountIsOutOfRange() {
    String message = parseError(withLine("conv 99999999999 kernel=3"), 3);

    assertContains(message, "it must be at most 2147483647");
  }

  @Test
  void linearWeightAboveTensorLimitNamesLine() {
    String message = parseError("input 1x96x96\nflatten\nlinear 2000000\nlinear 136\n", 3);

    assertContains(message, "the weight of linear 2000000 on 9216 input features");
    assertContains(message, "has 18,432,000,000 values, more than the 2,147,483,647 (2^31 - 1)");
    assertContains(message, "use fewer output features");
    assertContains(message, "pooling before flatten");
  }

  @Test
  void linearWeightAtTensorLimitParses() {
    // 65,535 x 32,768 = 2^31 - 2^15 values, just below the limit.
    ModelSpec spec =
        ModelSpec.parse("input 2x128x128\nflatten\nlinear 65535\nlinear 136\n", SOURCE);

    assertEquals(65535L * 32768 + 65535 + 136L * 65535 + 136, spec.parameterCount());
  }

  @Test
  void convWeightAboveTensorLimitNamesLine() {
    String message = parseError("input 1x8x8\nconv 300000 kernel=3\nconv 1000 kernel=3\n", 3);

    assertContains(message, "the weight of conv 1000 kernel=3 on 300000 input channels");
    assertContains(message, "has 2,700,000,000 values");
    assertContains(message, "use fewer output channels or a smaller kernel");
  }

  @Test
  void convOutputAboveTensorLimitNamesLine() {
    String message = parseError("input 1x96x96\nconv 1000000 kernel=1\n" + TAIL, 2);

    assertContains(message, "the output of conv 1000000 for one image, 1000000x96x96,");
    assertContains(message, "has 9,216,000,000 values");
    assertContains(message, "pool before this layer");
  }

  @Test
  void textKernelIsInvalid() {
    String message = parseError(withLine("conv 8 kernel=three"), 3);

    assertContains(message, "invalid conv kernel 'three'");
  }

  @Test
  void dropoutAboveOneIsOutOfRange() {
    String message = parseError(withLine("dropout 1.5"), 3);

    assertContains(message, "invalid dropout probability 1.5: it must be in [0, 1]");
  }

  @Test
  void dropoutNaNIsInvalid() {
    String message = parseError(withLine("dropout NaN"), 3);

    assertContains(message, "it must be a number");
  }

  @Test
  void dropoutWithoutProbabilityIsRejected() {
    String message = parseError(withLine("dropout"), 3);

    assertContains(message, "dropout takes one value");
  }

  @Test
  void zeroBatchNormEpsIsOutOfRange() {
    String message = parseError(withLine("batchnorm eps=0"), 3);

    assertContains(message, "it must be above 0");
  }

  @Test
  void poolPaddingAboveHalfIsRejected() {
    String message = parseError(withLine("maxpool 2 padding=2"), 3);

    assertContains(message, "at most half the kernel");
  }

  @Test
  void unknownInitListsSchemes() {
    String message = parseError("input 1x8x8\nflatten\nlinear 136 init=glorot\n", 3);

    assertContains(message, "unknown init 'glorot'");
    assertContains(message, WeightInit.textNames());
  }

  @Test
  void invalidBiasValueIsRejected() {
    String message = parseError("input 1x8x8\nflatten\nlinear 136 bias=yes\n", 3);

    assertContains(message, "use true or false");
  }

  @Test
  void kernelLargerThanInputShowsShape() {
    String text = "input 1x8x8\nconv 4 kernel=3\nmaxpool 2\n\nconv 8 kernel=5\nflatten\nlinear 136";

    String message = parseError(text, 5);

    assertContains(message, "conv kernel 5 is larger than its input here, 4x3x3");
  }

  @Test
  void dilatedKernelSpanIsChecked() {
    String message = parseError(withLine("conv 4 kernel=3 dilation=3"), 3);

    assertContains(message, "kernel 3 with dilation 3 spans 7");
  }

  @Test
  void poolLargerThanInputIsRejected() {
    String message = parseError(withLine("avgpool 7"), 3);

    assertContains(message, "avgpool kernel 7 is larger than its input here, 4x6x6");
  }

  @Test
  void linearBeforeFlattenIsRejected() {
    String message = parseError("input 1x8x8\nlinear 136\n", 2);

    assertContains(message, "add a 'flatten' line before it");
  }

  @Test
  void convAfterFlattenIsRejected() {
    String message = parseError("input 1x8x8\nflatten\nconv 4 kernel=1\nlinear 136\n", 3);

    assertContains(message, "move it before flatten");
  }

  @Test
  void missingInputLineIsRejected() {
    String message = parseError("# nothing but a comment\n\n", 1);

    assertContains(message, "missing input line");
  }

  @Test
  void layerBeforeInputIsRejected() {
    String message = parseError("# header\nflatten\ninput 1x8x8\nlinear 136\n", 2);

    assertContains(message, "'flatten' comes before the input line");
  }

  @Test
  void secondInputLineIsRejected() {
    String message = parseError("input 1x8x8\ninput 1x8x8\nflatten\nlinear 136\n", 2);

    assertContains(message, "the first is line 1");
  }

  @Test
  void twoDimensionalInputIsInvalid() {
    String message = parseError("input 96x96\nflatten\nlinear 136\n", 1);

    assertContains(message, "invalid input shape '96x96'");
  }

  @Test
  void zeroInputChannelsIsOutOfRange() {
    String message = parseError("input 0x8x8\nflatten\nlinear 136\n", 1);

    assertContains(message, "invalid input channels 0");
  }

  @Test
  void wrongOutputCountNamesLastLayer() {
    String message = parseError("input 1x8x8\nflatten\nlinear 10\n\n# end\n", 3);

    assertContains(message, "the last layer must be linear 136");
  }

  @Test
  void unflattenedOutputIsRejected() {
    String message = parseError("input 1x8x8\nconv 136 kernel=8\n", 2);

    assertContains(message, "the model ends with 136x1x1");
  }

  @Test
  void inputAloneIsRejected() {
    String message = parseError("input 1x8x8\n", 1);

    assertContains(message, "the last layer must be linear 136");
  }

  @Test
  void readNamesFileInErrors(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("broken.model");
    Files.writeString(file, "input 1x8x8\nflatten\nlinaer 136\n");

    ModelFormatException error =
        assertThrows(ModelFormatException.class, () -> ModelSpec.read(file));

    assertTrue(error.getMessage().startsWith(file + ":3: "), error.getMessage());
  }

  /** A JPEG passed where a model file belongs, which a UTF-8 reader rejects at its first byte. */
  @Test
  void readNamesByteThatIsNotUtf8(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("face.jpg");
    Files.write(file, new byte[] {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, (byte) 0xE0});

    IOException error = assertThrows(IOException.class, () -> ModelSpec.read(file));

    String message = error.getMessage();
    assertTrue(message.startsWith(file + ": line 1 is not valid UTF-8"), message);
    assertTrue(message.contains("byte 0xFF at offset 0"), message);
    assertTrue(message.contains("Expected a model file"), message);
  }

  /** A large file passed as the model, such as a video, which must not be read into memory. */
  @Test
  void readRejectsFileOverSizeLimit(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("video.mp4");
    long size = 3L << 30;
    try (RandomAccessFile sparse = new RandomAccessFile(file.toFile(), "rw")) {
      sparse.setLength(size);
    }

    IOException error = assertThrows(IOException.class, () -> ModelSpec.read(file));

    String message = error.getMessage();
    assertTrue(message.startsWith(file + ": " + size + " bytes"), message);
    assertTrue(message.contains("more than the " + ModelSpec.MAX_FILE_BYTES), message);
    assertTrue(message.contains("pass the right file"), message);
  }

  @Test
  void readParsesValidFile(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("small.model");
    Files.writeString(file, "input 1x8x8\nflatten\nlinear 136\n");

    ModelSpec spec = ModelSpec.read(file);

    assertEquals(file.toString(), spec.sourceName());
  }
}
