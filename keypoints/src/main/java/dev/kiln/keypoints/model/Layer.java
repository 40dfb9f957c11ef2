package dev.kiln.keypoints.model;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.nn.Module;
import dev.kiln.nn.layers.AvgPool2d;
import dev.kiln.nn.layers.BatchNorm1d;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.MaxPool2d;

/**
 * One line of a model file after parsing: a layer and its settings, without the sizes that depend
 * on the layer before it. Those sizes (input channels, input features) come from the input shape
 * passed to each method, which {@link ModelSpec} tracks through the model.
 *
 * <p>Shapes are {@code [channels, height, width]}, or {@code [features]} after flatten, without the
 * batch dimension. {@link ModelSpec#parse} checks the settings' ranges; the records themselves do
 * not.
 */
public sealed interface Layer {

  /** Writes this layer as one line of the model format, without a comment. */
  String toText();

  /**
   * Returns the shape that this layer produces from {@code input}.
   *
   * @throws IllegalArgumentException if the layer cannot take that input, or if its weight or its
   *     output for one image has more values than one tensor can hold. The message gives the reason
   *     and the fix
   */
  int[] outputShape(int[] input);

  /** Number of trained values for the given input shape. */
  default long parameterCount(int[] input) {
    return 0;
  }

  /** Multiply-accumulates per image for the given input shape. Only conv and linear have any. */
  default long multiplyAccumulates(int[] input) {
    return 0;
  }

  /** Creates the nn module, drawing initial weights and dropout masks from {@code generator}. */
  Module build(int[] input, DType dtype, Generator generator);

  /** 2-D convolution with a square kernel: {@code conv OUT kernel=K [stride padding ...]}. */
  record Conv(
      int outChannels,
      int kernel,
      int stride,
      int padding,
      int dilation,
      boolean bias,
      WeightInit init)
      implements Layer {

    @Override
    public String toText() {
      StringBuilder text = new StringBuilder("conv " + outChannels + " kernel=" + kernel);
      if (stride != 1) {
        text.append(" stride=").append(stride);
      }
      if (padding != 0) {
        text.append(" padding=").append(padding);
      }
      if (dilation != 1) {
        text.append(" dilation=").append(dilation);
      }
      if (!bias) {
        text.append(" bias=false");
      }
      if (init != WeightInit.DEFAULT) {
        text.append(" init=").append(init.textName());
      }
      return text.toString();
    }

    @Override
    public int[] outputShape(int[] input) {
      ShapeMath.requireSpatial("conv", input);
      int[] size = ShapeMath.slide("conv", input, kernel, stride, padding, dilation);
      ShapeMath.requireTensorSize(
          "the weight of conv "
              + outChannels
              + " kernel="
              + kernel
              + " on "
              + input[0]
              + " input channels",
          (long) outChannels * input[0] * kernel * kernel,
          "use fewer output channels or a smaller kernel");
      int[] output = {outChannels, size[0], size[1]};
      ShapeMath.requireTensorSize(
          "the output of conv " + outChannels + " for one image, " + ShapeMath.format(output) + ",",
          ShapeMath.size(output),
          "use fewer output channels, a larger stride, or pool before this layer");
      return output;
    }

    @Override
    public long parameterCount(int[] input) {
      return (long) outChannels * input[0] * kernel * kernel + (bias ? outChannels : 0);
    }

    @Override
    public long multiplyAccumulates(int[] input) {
      int[] output = outputShape(input);
      return (long) outChannels * input[0] * kernel * kernel * output[1] * output[2];
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      Conv2d conv =
          new Conv2d(
              input[0],
              outChannels,
              new int[] {kernel, kernel},
              new int[] {stride, stride},
              new int[] {padding, padding},
              new int[] {dilation, dilation},
              bias,
              dtype,
              generator);
      init.apply(conv.weight(), conv.bias(), generator);
      return conv;
    }
  }

  /** Fully connected layer on a flat input: {@code linear OUT [bias=... init=...]}. */
  record Linear(int outFeatures, boolean bias, WeightInit init) implements Layer {

    @Override
    public String toText() {
      StringBuilder text = new StringBuilder("linear " + outFeatures);
      if (!bias) {
        text.append(" bias=false");
      }
      if (init != WeightInit.DEFAULT) {
        text.append(" init=").append(init.textName());
      }
      return text.toString();
    }

    @Override
    public int[] outputShape(int[] input) {
      if (!ShapeMath.isFlat(input)) {
        throw new IllegalArgumentException(
            "linear needs a flat input, but the input here is "
                + ShapeMath.describe(input)
                + "; add a 'flatten' line before it");
      }
      ShapeMath.requireTensorSize(
          "the weight of linear " + outFeatures + " on " + input[0] + " input features",
          (long) outFeatures * input[0],
          "use fewer output features, or give the layer fewer input features, such as by pooling"
              + " before flatten");
      return new int[] {outFeatures};
    }

    @Override
    public long parameterCount(int[] input) {
      return (long) outFeatures * input[0] + (bias ? outFeatures : 0);
    }

    @Override
    public long multiplyAccumulates(int[] input) {
      return (long) outFeatures * input[0];
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      var linear = new dev.kiln.nn.layers.Linear(input[0], outFeatures, bias, dtype, generator);
      init.apply(linear.weight(), linear.bias(), generator);
      return linear;
    }
  }

  /** Max pooling: {@code maxpool K [stride=K padding=0]}. */
  record MaxPool(int kernel, int stride, int padding) implements Layer {

    @Override
    public String toText() {
      return poolText("maxpool", kernel, stride, padding);
    }

    @Override
    public int[] outputShape(int[] input) {
      return poolShape("maxpool", input, kernel, stride, padding);
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      return new MaxPool2d(kernel, stride, padding);
    }
  }

  /** Average pooling, padded zeros counted: {@code avgpool K [stride=K padding=0]}. */
  record AvgPool(int kernel, int stride, int padding) implements Layer {

    @Override
    public String toText() {
      return poolText("avgpool", kernel, stride, padding);
    }

    @Override
    public int[] outputShape(int[] input) {
      return poolShape("avgpool", input, kernel, stride, padding);
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      return new AvgPool2d(kernel, stride, padding);
    }
  }

  /**
   * Batch normalization over the channels (BatchNorm2d) before flatten, or over the features
   * (BatchNorm1d) after it: {@code batchnorm [eps=1e-5 momentum=0.1]}.
   */
  record BatchNorm(double eps, double momentum) implements Layer {
    static final double DEFAULT_EPS = 1e-5;
    static final double DEFAULT_MOMENTUM = 0.1;

    @Override
    public String toText() {
      StringBuilder text = new StringBuilder("batchnorm");
      if (eps != DEFAULT_EPS) {
        text.append(" eps=").append(ShapeMath.formatNumber(eps));
      }
      if (momentum != DEFAULT_MOMENTUM) {
        text.append(" momentum=").append(ShapeMath.formatNumber(momentum));
      }
      return text.toString();
    }

    @Override
    public int[] outputShape(int[] input) {
      return input.clone();
    }

    @Override
    public long parameterCount(int[] input) {
      return 2L * input[0];
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      if (ShapeMath.isFlat(input)) {
        return new BatchNorm1d(input[0], eps, momentum, true, true, dtype);
      }
      return new BatchNorm2d(input[0], eps, momentum, true, true, dtype);
    }
  }

  /** Dropout with probability P of zeroing each value in training: {@code dropout P}. */
  record Dropout(double p) implements Layer {

    @Override
    public String toText() {
      return "dropout " + ShapeMath.formatNumber(p);
    }

    @Override
    public int[] outputShape(int[] input) {
      return input.clone();
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      return new dev.kiln.nn.layers.Dropout(p, generator);
    }
  }

  /** Flattening of [C, H, W] to [C·H·W], which leaves a flat input as it is: {@code flatten}. */
  record Flatten() implements Layer {

    @Override
    public String toText() {
      return "flatten";
    }

    @Override
    public int[] outputShape(int[] input) {
      long size = ShapeMath.size(input);
      if (size > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(
            "flatten of "
                + ShapeMath.describe(input)
                + " gives "
                + size
                + " features, more than a tensor dimension can hold; pool more before it");
      }
      return new int[] {(int) size};
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      return new dev.kiln.nn.layers.Flatten();
    }
  }

  /**
   * An element-wise activation: {@code relu}, {@code leaky_relu [slope=0.01]}, {@code elu
   * [alpha=1]}, {@code tanh} or {@code sigmoid}. The parameter is the slope for leaky_relu, alpha
   * for elu, and unused (0) for the others.
   */
  record Activation(String name, double parameter) implements Layer {

    @Override
    public String toText() {
      return switch (name) {
        case "leaky_relu" ->
            parameter == 0.01 ? name : name + " slope=" + ShapeMath.formatNumber(parameter);
        case "elu" ->
            parameter == 1.0 ? name : name + " alpha=" + ShapeMath.formatNumber(parameter);
        default -> name;
      };
    }

    @Override
    public int[] outputShape(int[] input) {
      return input.clone();
    }

    @Override
    public Module build(int[] input, DType dtype, Generator generator) {
      return switch (name) {
        case "leaky_relu" -> new dev.kiln.nn.layers.LeakyReLU(parameter);
        case "elu" -> new dev.kiln.nn.layers.ELU(parameter);
        default -> dev.kiln.nn.layers.Activations.byName(name);
      };
    }
  }

  private static String poolText(String keyword, int kernel, int stride, int padding) {
    StringBuilder text = new StringBuilder(keyword + " " + kernel);
    if (stride != kernel) {
      text.append(" stride=").append(stride);
    }
    if (padding != 0) {
      text.append(" padding=").append(padding);
    }
    return text.toString();
  }

  private static int[] poolShape(String keyword, int[] input, int kernel, int stride, int padding) {
    ShapeMath.requireSpatial(keyword, input);
    int[] size = ShapeMath.slide(keyword, input, kernel, stride, padding, 1);
    return new int[] {input[0], size[0], size[1]};
  }
}
