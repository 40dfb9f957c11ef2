package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.Storage;
import org.ejml.data.DMatrixRMaj;
import org.ejml.data.FMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.CommonOps_FDRM;

/** The EJML path of {@link Gemm}, which checks the arguments before calling it. */
final class EjmlGemm {

  private EjmlGemm() {}

  /**
   * Runs the product in EJML. EJML matrices start at index 0 of their array, so an operand at a
   * non-zero offset, or in a larger array, is copied into a matrix of its own first.
   */
  static void multiply(
      boolean transA,
      boolean transB,
      int m,
      int n,
      int k,
      Storage a,
      int aOffset,
      Storage b,
      int bOffset,
      Storage c,
      int cOffset,
      boolean accumulate) {
    int aRows = transA ? k : m;
    int aCols = transA ? m : k;
    int bRows = transB ? n : k;
    int bCols = transB ? k : n;
    if (a instanceof Storage.F32) {
      FMatrixRMaj ma = floatMatrix(a.floats(), aOffset, aRows, aCols);
      FMatrixRMaj mb = floatMatrix(b.floats(), bOffset, bRows, bCols);
      FMatrixRMaj mc = floatMatrix(c.floats(), cOffset, m, n);
      if (accumulate) {
        if (transA && transB) {
          CommonOps_FDRM.multAddTransAB(ma, mb, mc);
        } else if (transA) {
          CommonOps_FDRM.multAddTransA(ma, mb, mc);
        } else if (transB) {
          CommonOps_FDRM.multAddTransB(ma, mb, mc);
        } else {
          CommonOps_FDRM.multAdd(ma, mb, mc);
        }
      } else {
        if (transA && transB) {
          CommonOps_FDRM.multTransAB(ma, mb, mc);
        } else if (transA) {
          CommonOps_FDRM.multTransA(ma, mb, mc);
        } else if (transB) {
          CommonOps_FDRM.multTransB(ma, mb, mc);
        } else {
          CommonOps_FDRM.mult(ma, mb, mc);
        }
      }
      if (mc.data != c.floats()) {
        System.arraycopy(mc.data, 0, c.floats(), cOffset, m * n);
      }
    } else {
      DMatrixRMaj ma = doubleMatrix(a.doubles(), aOffset, aRows, aCols);
      DMatrixRMaj mb = doubleMatrix(b.doubles(), bOffset, bRows, bCols);
      DMatrixRMaj mc = doubleMatrix(c.doubles(), cOffset, m, n);
      if (accumulate) {
        if (transA && transB) {
          CommonOps_DDRM.multAddTransAB(ma, mb, mc);
        } else if (transA) {
          CommonOps_DDRM.multAddTransA(ma, mb, mc);
        } else if (transB) {
          CommonOps_DDRM.multAddTransB(ma, mb, mc);
        } else {
          CommonOps_DDRM.multAdd(ma, mb, mc);
        }
      } else {
        if (transA && transB) {
          CommonOps_DDRM.multTransAB(ma, mb, mc);
        } else if (transA) {
          CommonOps_DDRM.multTransA(ma, mb, mc);
        } else if (transB) {
          CommonOps_DDRM.multTransB(ma, mb, mc);
        } else {
          CommonOps_DDRM.mult(ma, mb, mc);
        }
      }
      if (mc.data != c.doubles()) {
        System.arraycopy(mc.data, 0, c.doubles(), cOffset, m * n);
      }
    }
  }

  /** Wraps the array when the matrix fills it from index 0, else copies the matrix out. */
  private static FMatrixRMaj floatMatrix(float[] data, int offset, int rows, int cols) {
    if (offset == 0 && data.length == rows * cols) {
      return FMatrixRMaj.wrap(rows, cols, data);
    }
    FMatrixRMaj matrix = new FMatrixRMaj(rows, cols);
    System.arraycopy(data, offset, matrix.data, 0, rows * cols);
    return matrix;
  }

  private static DMatrixRMaj doubleMatrix(double[] data, int offset, int rows, int cols) {
    if (offset == 0 && data.length == rows * cols) {
      return DMatrixRMaj.wrap(rows, cols, data);
    }
    DMatrixRMaj matrix = new DMatrixRMaj(rows, cols);
    System.arraycopy(data, offset, matrix.data, 0, rows * cols);
    return matrix;
  }
}
