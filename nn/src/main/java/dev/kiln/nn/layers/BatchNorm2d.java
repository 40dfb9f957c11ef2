package dev.kiln.nn.layers;

import dev.kiln.core.ops.Checks;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;

/** Batch normalization of [N, C, H, W] feature maps, per channel. */
public class BatchNorm2d extends BatchNorm {

  /** eps 1e-5, momentum 0.1, affine, with running statistics, in float32 (PyTorch's defaults). */
  public BatchNorm2d(int numFeatures) {
    this(numFeatures, 1e-5, 0.1, true, true, DType.FLOAT32);
  }

  public BatchNorm2d(
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
    Checks.rank("BatchNorm2d", input, 4, "[N, C, H, W]");
  }
}
