package dev.kiln.keypoints.model;

import java.math.BigDecimal;
import java.util.Locale;

/**
 * Shape arithmetic for the layers of a model file. A shape is {@code [channels, height, width]}
 * before flatten and {@code [features]} after it, without the batch dimension.
 */
final class ShapeMath {
  /**
   * Largest number of elements of one tensor, 2^31 - 1, because kiln's tensors count their elements
   * in an int, as Java arrays do.
   */
  static final long MAX_TENSOR_ELEMENTS = Integer.MAX_VALUE;

  private ShapeMath() {}

  /** Returns whether {@code shape} is a flat feature vector, the shape after flatten. */
  static boolean isFlat(int[] shape) {
    return shape.length == 1;
  }

  /** Formats a shape as the input line writes it: {@code 32x46x46}, or {@code 6400} when flat. */
  static String format(int[] shape) {
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < shape.length; i++) {
      if (i > 0) {
        text.append('x');
      }
      text.append(shape[i]);
    }
    return text.toString();
  }

  /** Formats a shape for error messages, naming its dimensions. */
  static String describe(int[] shape) {
    if (isFlat(shape)) {
      return shape[0] + " features (flat)";
    }
    return format(shape) + " (channels x height x width)";
  }

  /** Throws unless {@code input} is a [C, H, W] shape, which conv and pooling layers need. */
  static void requireSpatial(String layer, int[] input) {
    if (isFlat(input)) {
      throw new IllegalArgumentException(
          layer
              + " needs a channels x height x width input, but the input here is "
              + describe(input)
              + "; move it before flatten");
    }
  }

  /**
   * Returns the [height, width] that a sliding window produces, with PyTorch's floor formula {@code
   * floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1}.
   *
   * @throws IllegalArgumentException if the window spans more than the padded input
   */
  static int[] slide(String layer, int[] input, int kernel, int stride, int padding, int dilation) {
    long span = (long) dilation * (kernel - 1) + 1;
    long height = input[1] + 2L * padding;
    long width = input[2] + 2L * padding;
    if (span > height || span > width) {
      String window =
          dilation == 1
              ? "kernel " + kernel + " is"
              : "kernel " + kernel + " with dilation " + dilation + " spans " + span + ", which is";
      throw new IllegalArgumentException(
          layer
              + " "
              + window
              + " larger than its input here, "
              + describe(input)
              + ", with padding "
              + padding
              + "; use a smaller kernel, add padding, or pool less before this layer");
    }
    long outputHeight = (height - span) / stride + 1;
    long outputWidth = (width - span) / stride + 1;
    if (outputHeight > Integer.MAX_VALUE || outputWidth > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          layer + " padding " + padding + " makes the output too large; use less padding");
    }
    return new int[] {(int) outputHeight, (int) outputWidth};
  }

  /** Returns the number of values in a shape. */
  static long size(int[] shape) {
    long size = 1;
    for (int dimension : shape) {
      size *= dimension;
    }
    return size;
  }

  /**
   * Throws unless {@code elements} values fit in one kiln tensor. The message starts with {@code
   * tensorName}, such as "the weight of linear 10", and ends with {@code advice}.
   */
  static void requireTensorSize(String tensorName, long elements, String advice) {
    if (elements > MAX_TENSOR_ELEMENTS) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "%s has %,d values, more than the %,d (2^31 - 1) that one tensor can hold; %s",
              tensorName,
              elements,
              MAX_TENSOR_ELEMENTS,
              advice));
    }
  }

  /** Writes a number in the shortest plain form that parses back to the same double. */
  static String formatNumber(double value) {
    return BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
  }
}
