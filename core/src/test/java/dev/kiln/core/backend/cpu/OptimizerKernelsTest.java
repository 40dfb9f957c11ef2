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
  private static final int SIZE = ElementwiseKernels.PARALLEL_MIN_ELEMENTS + 37;

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

  /** Float32 Nesterov SGD with decay and dampening, whose direction reads the rounded buffer. */
  @Test
  void sgdNesterovFloat32UpdatesSplitParameter() {
    Storage param = randomStorage(DType.FLOAT32, SIZE, 8);
    Storage grad = randomStorage(DType.FLOAT32, SIZE, 9);
    Storage buffer = randomStorage(DType.FLOAT32, SIZE, 10);
    float[] p0 = param.floats().clone();
    float[] b0 = buffer.floats().clone();
    var settings = new OptimizerKernels.SgdSettings(0.1, 0.9, 0.2, true, 0.01);

    OptimizerKernels.sgdStep(settings, param, grad, buffer, false);

    for (int i = 0; i < SIZE; i++) {
      double g = grad.floats()[i] + 0.01 * p0[i];
      float b = (float) (0.9 * b0[i] + (1.0 - 0.2) * g);
      float p = (float) (p0[i] - 0.1 * (g + 0.9 * b));
      assertEquals(b, buffer.floats()[i], "buffer at " + i);
      assertEquals(p, param.floats()[i], "param at " + i);
    }
  }

  /**
   * A second SGD step with momentum 0.9 and learning rate 1 on param 1, buffer 1 and gradient 0.1f.
   * The buffer 0.9 + 0.1f is 1.0000000015 in double and rounds to 1.0f. PyTorch 1.13 stores that
   * rounded buffer and subtracts it, so the parameter becomes exactly 0. Subtracting the unrounded
   * buffer would give -1.49e-9.
   */
  @Test
  void sgdFloat32SubtractsRoundedBuffer() {
    Storage param = Storage.wrap(new float[] {1f});
    Storage grad = Storage.wrap(new float[] {0.1f});
    Storage buffer = Storage.wrap(new float[] {1f});
    var settings = new OptimizerKernels.SgdSettings(1.0, 0.9, 0.0, false, 0.0);

    OptimizerKernels.sgdStep(settings, param, grad, buffer, false);

    assertEquals(1f, buffer.floats()[0], "buffer");
    assertEquals(0f, param.floats()[0], "param");
  }
}
