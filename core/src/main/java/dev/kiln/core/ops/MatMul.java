package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.Gemm;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.Arrays;

/** Matrix products: plain, batched with broadcast batch dimensions, and the fused linear map. */
public final class MatMul {
  private MatMul() {}

  /**
   * Matrix product with PyTorch's rules: 1-D operands are promoted to a row (left) or a column
   * (right) and the added dimension is removed again; dimensions before the last two are batch
   * dimensions and broadcast.
   */
  public static Tensor matmul(Tensor a, Tensor b) {
    Checks.sameDTypeAndDevice("matmul", a, b);
    if (a.dim() == 0 || b.dim() == 0) {
      throw new IllegalArgumentException(
          "matmul: both operands need at least one dimension, got shapes "
              + Shapes.format(a.shape())
              + " and "
              + Shapes.format(b.shape())
              + ": use mul for scalars");
    }
    // Checked before the 1-D promotion so that the message shows the shapes the caller passed.
    int k = a.size(-1);
    int bRows = b.dim() == 1 ? b.size(0) : b.size(-2);
    if (bRows != k) {
      throw new IllegalArgumentException(
          "matmul: shapes "
              + Shapes.format(a.shape())
              + " and "
              + Shapes.format(b.shape())
              + " do not chain: the last size of the first ("
              + k
              + ") must equal the "
              + (b.dim() == 1 ? "size" : "second-to-last size")
              + " of the second ("
              + bRows
              + ")");
    }
    if (a.dim() == 1) {
      Tensor product = matmul(a.unsqueeze(0), b);
      // With b also 1-D the inner call already removed b's column, leaving [1] for a's row.
      return b.dim() == 1 ? product.squeeze(0) : product.squeeze(-2);
    }
    if (b.dim() == 1) {
      return matmul(a, b.unsqueeze(1)).squeeze(-1);
    }
    int[] aShape = a.shape();
    int[] bShape = b.shape();
    int[] batch;
    try {
      batch =
          Broadcast.shape(
              "matmul",
              Arrays.copyOf(aShape, aShape.length - 2),
              Arrays.copyOf(bShape, bShape.length - 2));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "matmul: the batch dimensions of shapes "
              + Shapes.format(aShape)
              + " and "
              + Shapes.format(bShape)
              + " cannot be broadcast",
          e);
    }
    Tensor left = a.expand(withMatrix(batch, aShape));
    Tensor right = b.expand(withMatrix(batch, bShape));
    Tensor out = product(left, false, right, false);
    return Autograd.record(
        "matmul",
        out,
        g ->
            new Tensor[] {
              left.requiresGrad() ? product(g, false, right, true) : null,
              right.requiresGrad() ? product(left, true, g, false) : null
            },
        left,
        right);
  }

  /**
   * Applies {@code x W^T + b} over the last dimension of {@code x}, as PyTorch's {@code F.linear}:
   * weight is [out, in], bias is [out] or null.
   */
  public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
    Checks.sameDTypeAndDevice("linear", x, weight);
    Checks.rank("linear", weight, 2, "weight [out, in]");
    int[] xShape = x.shape();
    int in = weight.size(1);
    int outFeatures = weight.size(0);
    if (x.dim() == 0 || xShape[xShape.length - 1] != in) {
      throw new IllegalArgumentException(
          "linear: expected input of shape [..., "
              + in
              + "] for weight "
              + Shapes.format(weight.shape())
              + " but got "
              + Shapes.format(xShape));
    }
    // The product of the leading sizes, because numel / in would divide by zero for in = 0.
    int rows = Shapes.numel(Arrays.copyOf(xShape, xShape.length - 1));
    Tensor flat = x.reshape(rows, in);
    Tensor out = product(flat, false, weight, true);
    if (bias != null) {
      Checks.sameDTypeAndDevice("linear", x, bias);
      // A broadcastable bias of another shape would pass the forward pass, but its gradient below
      // has shape [out] and would fail the backward pass.
      if (bias.dim() != 1 || bias.size(0) != outFeatures) {
        throw new IllegalArgumentException(
            "linear: bias of shape "
                + Shapes.format(bias.shape())
                + " does not match weight "
                + Shapes.format(weight.shape())
                + ": expected ["
                + outFeatures
                + "]");
      }
      out = Elementwise.zip("linear", BinaryOp.ADD, out, bias);
    }
    int[] outShape = xShape.clone();
    outShape[outShape.length - 1] = outFeatures;
    Tensor result = out.reshape(outShape);
    return Autograd.record(
        "linear",
        result,
        g -> {
          Tensor g2 = g.reshape(rows, outFeatures);
          return new Tensor[] {
            x.requiresGrad() ? product(g2, false, weight, false).reshape(xShape) : null,
            weight.requiresGrad() ? product(g2, true, flat, false) : null,
            bias != null && bias.requiresGrad() ? g2.sum(new int[] {0}, false) : null
          };
        },
        x,
        weight,
        bias);
  }

  /**
   * Multiplies the matrices in the last two dimensions, {@code op(a) op(b)} where op transposes
   * when asked, over equal batch dimensions. Records nothing.
   */
  static Tensor product(Tensor a, boolean transA, Tensor b, boolean transB) {
    int[] aShape = a.shape();
    int[] bShape = b.shape();
    int rank = aShape.length;
    int m = transA ? aShape[rank - 1] : aShape[rank - 2];
    int k = transA ? aShape[rank - 2] : aShape[rank - 1];
    int n = transB ? bShape[rank - 2] : bShape[rank - 1];
    int[] outShape = aShape.clone();
    outShape[rank - 2] = m;
    outShape[rank - 1] = n;
    Tensor out = Tensor.empty(a.dtype(), a.device(), outShape);
    int batches = out.numel() / Math.max(1, m * n);
    if (m * n == 0) {
      return out;
    }
    if (!a.device().isCpu()) {
      kernelsOf(a)
          .matmul()
          .batchedGemm(
              transA, transB, m, n, k, batches, bufferOf(a), bufferOf(b), bufferOf(out), false);
      return out;
    }
    for (int i = 0; i < batches; i++) {
      Gemm.gemm(
          transA,
          transB,
          m,
          n,
          k,
          a.storage(),
          i * m * k,
          b.storage(),
          i * k * n,
          out.storage(),
          i * m * n,
          false);
    }
    return out;
  }

  private static int[] withMatrix(int[] batch, int[] shape) {
    int[] result = Arrays.copyOf(batch, batch.length + 2);
    result[batch.length] = shape[shape.length - 2];
    result[batch.length + 1] = shape[shape.length - 1];
    return result;
  }
}
