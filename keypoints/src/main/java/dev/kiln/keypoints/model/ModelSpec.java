package dev.kiln.keypoints.model;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.keypoints.io.TextFiles;
import dev.kiln.nn.Sequential;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A checked description of a keypoint model: the input shape and the layers, with every size
 * inferred by tracking the shape through them. It builds the nn model and writes itself back as
 * text, so a run folder can record the architecture and a checkpoint can rebuild it.
 *
 * <p>The text format has one statement a line. A {@code #} starts a comment, and blank lines are
 * ignored. The first statement is {@code input CxHxW}, and each further line is a layer keyword,
 * then its plain values, then {@code key=value} settings:
 *
 * <pre>
 * input 1x96x96
 * conv 32 kernel=4        # output channels; stride=1 padding=0 dilation=1 bias=true init=default
 * elu                     # also relu, leaky_relu slope=0.01, elu alpha=1, tanh, sigmoid
 * maxpool 2               # kernel; stride=kernel padding=0 (avgpool takes the same)
 * batchnorm               # eps=1e-5 momentum=0.1; channels or features inferred
 * dropout 0.1             # probability of zeroing a value in training
 * flatten
 * linear 136 init=xavier_uniform   # output features; bias=true init=default
 * </pre>
 *
 * <p>{@code init} is one of {@code default} (PyTorch's), {@code xavier_uniform}, {@code
 * xavier_normal}, {@code kaiming_uniform} or {@code kaiming_normal}. Conv and pooling sizes follow
 * PyTorch's floor formula. {@code batchnorm} becomes BatchNorm2d before flatten and BatchNorm1d
 * after it. The model must end with {@value #OUTPUTS} outputs, one x and one y for each of the 68
 * keypoints.
 */
public final class ModelSpec {
  /** Number of model outputs: x0, y0, ..., x67, y67. */
  public static final int OUTPUTS = 136;

  private final String sourceName;
  private final int[] input;
  private final int inputLine;
  private final List<Layer> layers;
  private final List<int[]> inputShapes = new ArrayList<>();
  private final int[] outputShape;

  /**
   * Checks the layers against the input by tracking the shape, and throws a {@link
   * ModelFormatException} naming the line of the first layer that does not fit.
   */
  ModelSpec(
      String sourceName, int[] input, int inputLine, List<Layer> layers, List<Integer> lines) {
    this.sourceName = sourceName;
    this.input = input.clone();
    this.inputLine = inputLine;
    this.layers = List.copyOf(layers);

    int[] shape = this.input;
    for (int i = 0; i < layers.size(); i++) {
      inputShapes.add(shape);
      try {
        shape = layers.get(i).outputShape(shape);
      } catch (IllegalArgumentException problem) {
        throw new ModelFormatException(sourceName, lines.get(i), problem.getMessage());
      }
    }
    this.outputShape = shape;

    if (!ShapeMath.isFlat(shape) || shape[0] != OUTPUTS) {
      int lastLine = layers.isEmpty() ? inputLine : lines.get(lines.size() - 1);
      throw new ModelFormatException(
          sourceName,
          lastLine,
          "the model ends with "
              + ShapeMath.describe(shape)
              + ", but a keypoint model must output "
              + OUTPUTS
              + " values (x and y of 68 points); the last layer must be linear "
              + OUTPUTS);
    }
  }

  /**
   * Parses and checks a model description.
   *
   * @param sourceName the file or preset name that error messages start with
   * @throws ModelFormatException on the first invalid line, naming the line and the fix
   */
  public static ModelSpec parse(String text, String sourceName) {
    return new ModelParser(sourceName).parse(text);
  }

  /**
   * Largest model file that {@link #read} accepts, 1 MiB. A model file is a few KB of text, so a
   * larger file is another kind of file, which is rejected before it is read into memory.
   */
  public static final long MAX_FILE_BYTES = 1L << 20;

  /** Reads and parses a UTF-8 model file. Error messages start with the file's path. */
  public static ModelSpec read(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_FILE_BYTES) {
      throw new IOException(
          file
              + ": "
              + size
              + " bytes, more than the "
              + MAX_FILE_BYTES
              + " bytes (1 MiB) of a model file, which is a few KB of text: pass the right file");
    }
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (CharacterCodingException e) {
      throw TextFiles.notUtf8(file, "a model file", e);
    }
    return parse(text, file.toString());
  }

  /** Name of the file or preset that this model was parsed from. */
  public String sourceName() {
    return sourceName;
  }

  /** Input shape of one image: [channels, height, width]. */
  public int[] inputShape() {
    return input.clone();
  }

  /**
   * Line of the {@code input} statement in the text this model was parsed from, counted from 1, so
   * that a check of the input shape can name it.
   */
  public int inputLine() {
    return inputLine;
  }

  /** Returns the layers in order, without the input line. */
  public List<Layer> layers() {
    return layers;
  }

  /** Shape that layer {@code index} receives: [C, H, W], or [features] after flatten. */
  public int[] inputShapeOf(int index) {
    return inputShapes.get(index).clone();
  }

  /** Shape of the model's output for one image, always [{@value #OUTPUTS}]. */
  public int[] outputShape() {
    return outputShape.clone();
  }

  /**
   * Creates the model as a {@link Sequential} with one child per layer line, in order. Initial
   * weights and the dropout layers' masks are drawn from {@code generator}, so one seed fixes both.
   */
  public Sequential build(DType dtype, Generator generator) {
    Sequential model = new Sequential();
    for (int i = 0; i < layers.size(); i++) {
      model.add(layers.get(i).build(inputShapes.get(i), dtype, generator));
    }
    return model;
  }

  /** Number of trained values, computed from the shapes without building the model. */
  public long parameterCount() {
    long count = 0;
    for (int i = 0; i < layers.size(); i++) {
      count += layers.get(i).parameterCount(inputShapes.get(i));
    }
    return count;
  }

  /**
   * Multiply-accumulates of one image's forward pass, summed over the conv and linear layers. Bias
   * additions, batch norm, pooling and activations are left out.
   */
  public long multiplyAccumulates() {
    long count = 0;
    for (int i = 0; i < layers.size(); i++) {
      count += layers.get(i).multiplyAccumulates(inputShapes.get(i));
    }
    return count;
  }

  /**
   * Returns the number of values that one image's forward pass holds: the input of every layer and
   * the output. It is a double, because the shapes of a hostile model file could overflow a long.
   */
  public double activationCount() {
    double count = values(outputShape);
    for (int[] shape : inputShapes) {
      count += values(shape);
    }
    return count;
  }

  private static double values(int[] shape) {
    double product = 1;
    for (int size : shape) {
      product *= size;
    }
    return product;
  }

  /** Returns one line with the input shape, layer count, parameter count and MACs per image. */
  public String summary() {
    return String.format(
        "%s: input %s, %d layers, %,d parameters, %,d multiply-accumulates per image",
        sourceName,
        ShapeMath.format(input),
        layers.size(),
        parameterCount(),
        multiplyAccumulates());
  }

  /**
   * Writes the model in the text format, one layer a line with its output shape as a comment.
   * Parsing the result gives an equal spec.
   */
  public String toText() {
    List<String> statements = new ArrayList<>();
    statements.add("input " + ShapeMath.format(input));
    for (Layer layer : layers) {
      statements.add(layer.toText());
    }
    int width = statements.stream().skip(1).mapToInt(String::length).max().orElse(0) + 2;

    StringBuilder text = new StringBuilder();
    text.append(statements.get(0)).append('\n');
    for (int i = 0; i < layers.size(); i++) {
      String statement = statements.get(i + 1);
      int[] output = i + 1 < layers.size() ? inputShapes.get(i + 1) : outputShape;
      text.append(statement)
          .append(" ".repeat(width - statement.length()))
          .append("# -> ")
          .append(ShapeMath.format(output))
          .append('\n');
    }
    return text.toString();
  }

  /** Two specs are equal when they have the same input and layers, whatever their source. */
  @Override
  public boolean equals(Object other) {
    return other instanceof ModelSpec spec
        && Arrays.equals(input, spec.input)
        && layers.equals(spec.layers);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(input) + layers.hashCode();
  }

  @Override
  public String toString() {
    return summary();
  }
}
