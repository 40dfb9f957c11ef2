package dev.kiln.nn.layers;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/** Batch normalization of [N, C] features or [N, C, L] sequences, per channel. */
public class BatchNorm1d extends BatchNorm {

  /** eps 1e-5, momentum 0.1, affine, with running statistics, in float32 (PyTorch's defaults). */
  public BatchNorm1d(int numFeatures) {
    this(numFeatures, 1e-5, 0.1, true, true, DType.FLOAT32);
  }

  public BatchNorm1d(
      int numFeatures,
      double eps,
      double momentum,
      boolean affine,
      boolean trackRunningStats,
      DType dtype) {
    super(numFeatures, eps, momentum, affine, trackRunningStats, dtype);
  }

  @Override
  protected void checkInput(Tensor input) {
    if (input.dim() != 2 && input.dim() != 3) {
      throw new IllegalArgumentException(
          "BatchNorm1d: expected input of shape [N, C] or [N, C, L] but got "
              + Shapes.format(input.shape()));
    }
  }
}
