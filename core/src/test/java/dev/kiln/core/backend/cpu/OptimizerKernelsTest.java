package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import org.junit.jupiter.api.Test;

/**
 * Checks the update loops of {@link OptimizerKernels} on a parameter large enough to be split over
 * the threads, element by element against the documented formula, bit for bit. The formulas here
 * are written out again, in the order of the Javadoc, so a chunk that is skipped, run twice or
 * shifted fails.
 */
class OptimizerKernelsTest {

  /** Above the pool's size limit and odd, so the two chunks differ in size. */
  private static final int SIZE = ElementwiseKernels.PARALLEL_MIN_SIZE + 37;

  @Test
  void adamUpdatesSplitParameter() {
    Storage param = randomStorage(DType.FLOAT32, SIZE, 1);
    Storage grad = randomStorage(DType.FLOAT32, SIZE, 2);
    Storage m = randomStorage(DType.FLOAT32, SIZE, 3);
    Storage v = randomStorage(DType.FLOAT32, SIZE, 4);
    for (int i = 0; i < SIZE; i++) {
      v.set(i, Math.abs(v.get(i)));
    }
    float[] p0 = param.floats().clone();
    float[] m0 = m.floats().clone();
    float[] v0 = v.floats().clone();
    var settings = new OptimizerKernels.AdamSettings(1e-3, 0.9, 0.999, 1e-8, 0.01, false);
    long step = 3;

    OptimizerKernels.adamStep(settings, step, param, grad, m, v);

    double stepSize = 1e-3 / (1.0 - Math.pow(0.9, step));
    double correction = Math.sqrt(1.0 - Math.pow(0.999, step));
    for (int i = 0; i < SIZE; i++) {
      double g = grad.floats()[i] + 0.01 * p0[i];
      float mi = (float) (0.9 * m0[i] + (1.0 - 0.9) * g);
      float vi = (float) (0.999 * v0[i] + (1.0 - 0.999) * g * g);
      float pi = (float) (p0[i] - stepSize * mi / (Math.sqrt(vi) / correction + 1e-8));
      assertEquals(mi, m.floats()[i], "m at " + i);
      assertEquals(vi, v.floats()[i], "v at " + i);
      assertEquals(pi, param.floats()[i], "param at " + i);
    }
  }

  @Test
  void sgdMomentumUpdatesSplitParameter() {
    Storage param = randomStorage(DType.FLOAT64, SIZE, 5);
    Storage grad = randomStorage(DType.FLOAT64, SIZE, 6);
    Storage buffer = randomStorage(DType.FLOAT64, SIZE, 7);
    double[] p0 = param.doubles().clone();
    double[] b0 = buffer.doubles().clone();
    var settings = new OptimizerKernels.SgdSettings(0.1, 0.9, 0.0, false, 0.0);

    OptimizerKernels.sgdStep(settings, param, grad, buffer, false);

    for (int i = 0; i < SIZE; i++) {
      double b = 0.9 * b0[i] + grad.doubles()[i];
      assertEquals(b, buffer.doubles()[i], "buffer at " + i);
      assertEquals(p0[i] - 0.1 * b, param.doubles()[i], "param at " + i);
    }
  }
}
