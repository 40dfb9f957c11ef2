package dev.kiln.keypoints.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.layers.BatchNorm1d;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Linear;
import org.junit.jupiter.api.Test;

/** Shape inference, counts, initialization and the text round trip of {@link ModelSpec}. */
class ModelSpecShapeTest {
  private static final String SOURCE = "test.model";

  private static Sequential build(ModelSpec spec) {
    return spec.build(DType.FLOAT32, new Generator(7));
  }

  @Test
  void flattenSizeIsInferred() {
    ModelSpec spec =
        ModelSpec.parse("input 3x10x12\nconv 5 kernel=3\nmaxpool 2\nflatten\nlinear 136", SOURCE);

    Linear linear = (Linear) build(spec).get(3);

    assertArrayEquals(new int[] {5 * 4 * 5}, spec.inputShapeOf(3));
    assertEquals(5 * 4 * 5, linear.weight().size(1));
  }

  @Test
  void convInputChannelsAreInferred() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 3x8x8\nconv 5 kernel=3\nconv 7 kernel=1\nflatten\nlinear 136", SOURCE);

    Conv2d second = (Conv2d) build(spec).get(1);

    assertArrayEquals(new int[] {7, 5, 1, 1}, second.weight().shape());
  }

  @Test
  void batchnormBeforeFlattenIs2d() {
    ModelSpec spec =
        ModelSpec.parse("input 1x8x8\nconv 6 kernel=3\nbatchnorm\nflatten\nlinear 136", SOURCE);

    BatchNorm2d norm = assertInstanceOf(BatchNorm2d.class, build(spec).get(1));

    assertEquals(6, norm.runningMean().numel());
  }

  @Test
  void batchnormAfterFlattenIs1d() {
    ModelSpec spec =
        ModelSpec.parse("input 2x4x4\nflatten\nbatchnorm momentum=0.2\nlinear 136", SOURCE);

    BatchNorm1d norm = assertInstanceOf(BatchNorm1d.class, build(spec).get(1));

    assertEquals(32, norm.runningMean().numel());
  }

  @Test
  void convOutputUsesFloorFormula() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 1x10x11\nconv 2 kernel=3 stride=2 padding=1\nconv 2 kernel=3 dilation=2"
                + "\nflatten\nlinear 136",
            SOURCE);

    // floor((10 + 2 - 3) / 2) + 1 = 5 and floor((11 + 2 - 3) / 2) + 1 = 6.
    assertArrayEquals(new int[] {2, 5, 6}, spec.inputShapeOf(1));
    // A 3x3 kernel with dilation 2 spans 5: 5 - 5 + 1 = 1 and 6 - 5 + 1 = 2.
    assertArrayEquals(new int[] {2, 1, 2}, spec.inputShapeOf(2));
  }

  @Test
  void poolOutputRoundsDown() {
    ModelSpec spec = ModelSpec.parse("input 1x7x7\nmaxpool 2\nflatten\nlinear 136", SOURCE);

    assertArrayEquals(new int[] {1, 3, 3}, spec.inputShapeOf(1));
  }

  @Test
  void multiplyAccumulatesOfTinyModel() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 1x4x4\nconv 2 kernel=3\nrelu\nmaxpool 1\nflatten\nlinear 136", SOURCE);

    // Conv: 2 outputs x 1 input x 3x3 kernel x 2x2 positions = 72; linear: 8 x 136 = 1088.
    assertEquals(72 + 1088, spec.multiplyAccumulates());
  }

  @Test
  void parameterCountOfTinyModel() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 1x4x4\nconv 2 kernel=3\nbatchnorm\nflatten\nlinear 136 bias=false", SOURCE);

    // Conv 2·9 + 2 bias, batch norm 2 scales + 2 shifts, linear 8·136 without bias.
    assertEquals(20 + 4 + 1088, spec.parameterCount());
    assertEquals(spec.parameterCount(), build(spec).parameterCount());
  }

  @Test
  void xavierUniformStaysWithinBound() {
    ModelSpec spec =
        ModelSpec.parse("input 1x8x8\nflatten\nlinear 136 init=xavier_uniform", SOURCE);
    Linear linear = (Linear) build(spec).get(1);
    double bound = Math.sqrt(6.0 / (64 + 136));

    double largest = linear.weight().abs().max().item();

    assertTrue(largest <= bound, "max |w| " + largest + " exceeds the bound " + bound);
    assertTrue(largest >= 0.99 * bound, "max |w| " + largest + " is far below the bound " + bound);
    assertEquals(0.0, linear.bias().abs().max().item());
  }

  @Test
  void defaultInitStaysWithinPyTorchBound() {
    ModelSpec spec = ModelSpec.parse("input 1x8x8\nflatten\nlinear 136", SOURCE);
    Linear linear = (Linear) build(spec).get(1);
    double bound = 1 / Math.sqrt(64);

    double largest = linear.weight().abs().max().item();

    assertTrue(largest <= bound, "max |w| " + largest + " exceeds the bound " + bound);
    assertTrue(largest >= 0.99 * bound, "max |w| " + largest + " is far below the bound " + bound);
  }

  @Test
  void kaimingUniformOnConvUsesFanIn() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 4x8x8\nconv 64 kernel=3 init=kaiming_uniform\nflatten\nlinear 136", SOURCE);
    Conv2d conv = (Conv2d) build(spec).get(0);
    double bound = Math.sqrt(6.0 / (4 * 9));

    double largest = conv.weight().abs().max().item();

    assertTrue(largest <= bound, "max |w| " + largest + " exceeds the bound " + bound);
    assertTrue(largest >= 0.99 * bound, "max |w| " + largest + " is far below the bound " + bound);
  }

  @Test
  void sameSeedBuildsSameWeights() {
    ModelSpec spec = ModelSpec.parse("input 1x8x8\nflatten\nlinear 136", SOURCE);

    Tensor first = ((Linear) build(spec).get(1)).weight();
    Tensor second = ((Linear) build(spec).get(1)).weight();

    assertArrayEquals(first.toFloatArray(), second.toFloatArray());
  }

  @Test
  void tinyModelForwardGives136Outputs() {
    ModelSpec spec =
        ModelSpec.parse(
            "input 1x12x12\nconv 4 kernel=3 padding=1\nbatchnorm\nleaky_relu\navgpool 2\n"
                + "flatten\ndropout 0.5\nlinear 136\ntanh",
            SOURCE);
    Tensor images = Tensor.zeros(DType.FLOAT32, 2, 1, 12, 12);

    Tensor output;
    try (var scope = GradMode.noGrad()) {
      output = build(spec).forward(images);
    }

    assertArrayEquals(new int[] {2, 136}, output.shape());
  }

  @Test
  void toTextRoundTripsEverySetting() {
    String text =
        """
        input 3x32x30
        conv 8 kernel=5 stride=2 padding=2 dilation=1 bias=false init=xavier_normal
        batchnorm eps=0.001 momentum=0.05
        leaky_relu slope=0.2
        avgpool 3 stride=1 padding=1
        conv 16 kernel=3 dilation=2 init=kaiming_normal
        elu alpha=0.5
        maxpool 2 stride=1
        flatten
        dropout 0.25
        batchnorm
        linear 64 bias=false init=kaiming_uniform
        sigmoid
        linear 136 init=xavier_uniform
        tanh
        """;
    ModelSpec spec = ModelSpec.parse(text, SOURCE);

    ModelSpec again = ModelSpec.parse(spec.toText(), "written");

    assertEquals(spec, again);
    assertEquals(spec.toText(), again.toText());
  }

  @Test
  void toTextCommentsOutputShapes() {
    ModelSpec spec = ModelSpec.parse("input 1x8x8\nmaxpool 2\nflatten\nlinear 136", SOURCE);

    String expected =
        """
        input 1x8x8
        maxpool 2   # -> 1x4x4
        flatten     # -> 16
        linear 136  # -> 136
        """;

    assertEquals(expected, spec.toText());
  }

  @Test
  void summaryStatesParametersAndMacs() {
    ModelSpec spec = ModelSpec.parse("input 1x8x8\nflatten\nlinear 136", SOURCE);

    String summary = spec.summary();

    assertTrue(summary.contains("8,840 parameters"), summary);
    assertTrue(summary.contains("8,704 multiply-accumulates per image"), summary);
  }
}
