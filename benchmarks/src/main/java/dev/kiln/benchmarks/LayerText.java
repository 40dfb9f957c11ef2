package dev.kiln.benchmarks;

import dev.kiln.keypoints.model.Layer;
import dev.kiln.keypoints.model.ModelSpec;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * The canonical text of each layer's kind and settings, which {@code Compare describe} prints for
 * kiln and {@code pytorch_bench.py describe} prints for PyTorch, so that the comparison table can
 * check that both sides run the same layers. Change both together: the table compares the texts as
 * strings.
 *
 * <p>Each layer is one line such as {@code conv in=1 out=16 kernel=3x3 stride=1x1 padding=1x1
 * dilation=1x1 groups=1 bias=false}. Every setting is written, defaults included, and numbers are
 * in plain decimal notation with no trailing zeros ({@code 0.00001}, {@code 0.1}, {@code 1}).
 */
final class LayerText {
  /** Separates the layers in the LAYERS field of a describe record. */
  static final String SEPARATOR = "; ";

  private LayerText() {}

  /** Returns the canonical text of each layer of {@code spec}, in order. */
  static List<String> of(ModelSpec spec) {
    List<String> texts = new ArrayList<>();
    for (int i = 0; i < spec.layers().size(); i++) {
      texts.add(of(spec.layers().get(i), spec.inputShapeOf(i)));
    }
    return texts;
  }

  /** Returns the canonical text of one layer that receives {@code input} ([C, H, W] or [F]). */
  static String of(Layer layer, int[] input) {
    return switch (layer) {
      case Layer.Conv conv ->
          "conv in=%d out=%d kernel=%s stride=%s padding=%s dilation=%s groups=1 bias=%b"
              .formatted(
                  input[0],
                  conv.outChannels(),
                  pair(conv.kernel()),
                  pair(conv.stride()),
                  pair(conv.padding()),
                  pair(conv.dilation()),
                  conv.bias());
      case Layer.Linear linear ->
          "linear in=%d out=%d bias=%b".formatted(input[0], linear.outFeatures(), linear.bias());
      // kiln's pooling floors the output size and has no dilation.
      case Layer.MaxPool pool ->
          "maxpool kernel=%s stride=%s padding=%s dilation=1x1 ceil_mode=false"
              .formatted(pair(pool.kernel()), pair(pool.stride()), pair(pool.padding()));
      case Layer.AvgPool pool ->
          "avgpool kernel=%s stride=%s padding=%s ceil_mode=false count_include_pad=true"
              .formatted(pair(pool.kernel()), pair(pool.stride()), pair(pool.padding()));
      // ModelSpec builds BatchNorm1d after flatten and BatchNorm2d before it, always with affine
      // parameters and running statistics.
      case Layer.BatchNorm norm ->
          "batchnorm%dd features=%d eps=%s momentum=%s affine=true track_running_stats=true"
              .formatted(
                  input.length == 1 ? 1 : 2, input[0], number(norm.eps()), number(norm.momentum()));
      case Layer.Dropout dropout -> "dropout p=" + number(dropout.p());
      case Layer.Flatten _ -> "flatten start_dim=1 end_dim=-1";
      case Layer.Activation activation ->
          switch (activation.name()) {
            case "elu" -> "elu alpha=" + number(activation.parameter());
            case "leaky_relu" -> "leaky_relu slope=" + number(activation.parameter());
            default -> activation.name();
          };
    };
  }

  /** Writes a square size as {@code NxN}, the form of PyTorch's (height, width) pairs. */
  private static String pair(int size) {
    return size + "x" + size;
  }

  /**
   * Writes {@code value} in plain decimal notation without trailing zeros. Python's {@code
   * format(Decimal(repr(x)).normalize(), "f")} gives the same text, because {@code repr} and {@link
   * Double#toString} both print the shortest decimal that reads back as the same double.
   */
  static String number(double value) {
    return BigDecimal.valueOf(value).stripTrailingZeros().toPlainString();
  }
}
