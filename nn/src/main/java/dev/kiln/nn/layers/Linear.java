package dev.kiln.nn.layers;

import dev.kiln.core.ops.MatMul;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.init.Init;

/**
 * Fully connected layer: y = x Wᵀ + b over the last dimension, with weight [out, in] and bias
 * [out]. Initialized as PyTorch does by default (see {@link Init#pytorchDefault}).
 */
public class Linear extends Module {
  private final int inFeatures;
  private final int outFeatures;
  private final Tensor weight;
  private final Tensor bias;

  /** A layer with a bias, in float32. */
  public Linear(int inFeatures, int outFeatures) {
    this(inFeatures, outFeatures, true, DType.FLOAT32, Generator.global());
  }

  public Linear(int inFeatures, int outFeatures, boolean bias, DType dtype, Generator generator) {
    if (inFeatures <= 0 || outFeatures <= 0) {
      throw new IllegalArgumentException(
          "Linear sizes must be positive, got in=" + inFeatures + ", out=" + outFeatures);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = registerParameter("weight", Tensor.zeros(dtype, outFeatures, inFeatures));
    this.bias = bias ? registerParameter("bias", Tensor.zeros(dtype, outFeatures)) : null;
    Init.pytorchDefault(weight, this.bias, generator);
  }

  public Tensor weight() {
    return weight;
  }

  /** The bias, or null for a layer built without one. */
  public Tensor bias() {
    return bias;
  }

  @Override
  public Tensor forward(Tensor input) {
    return MatMul.linear(input, weight, bias);
  }

  @Override
  protected String extraRepr() {
    return "in_features="
        + inFeatures
        + ", out_features="
        + outFeatures
        + ", bias="
        + (bias == null ? "False" : "True");
  }
}
