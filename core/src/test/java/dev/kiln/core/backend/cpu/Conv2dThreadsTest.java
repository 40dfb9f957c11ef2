package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import org.junit.jupiter.api.Test;

/**
 * Runs the threaded convolution kernels twice on the same input and requires the same bits. The
 * core module's test configuration sets {@code kiln.threads=2}, so the batch is split into two
 * chunks even on a one-core machine.
 */
class Conv2dThreadsTest {

  /** Batch 5, 3 -> 8 channels, 3x3 kernel with padding 1 on 13x11 images: an uneven split. */
  private static final Conv2dGeometry GEOMETRY =
      new Conv2dGeometry(5, 3, 13, 11, 8, 3, 3, 1, 1, 1, 1, 1, 1);

  @Test
  void testsRunWithTwoThreads() {
    assertEquals(2, CpuParallel.threads(), "set -Dkiln.threads=2 for the core tests");
    assertEquals(2, CpuParallel.chunkCount(GEOMETRY.batch()));
  }

  @Test
  void convolutionRepeatsBitForBit() {
    Conv2dGeometry g = GEOMETRY;
    Storage x = randomStorage(DType.FLOAT32, g.inputSize(), 1);
    Storage weight = randomStorage(DType.FLOAT32, g.weightSize(), 2);
    Storage bias = randomStorage(DType.FLOAT32, g.outChannels(), 3);
    Storage gradOut = randomStorage(DType.FLOAT32, g.outputSize(), 4);

    float[][] first = runAll(x, weight, bias, gradOut, g);
    float[][] second = runAll(x, weight, bias, gradOut, g);

    assertArrayEquals(first[0], second[0], "forward");
    assertArrayEquals(first[1], second[1], "backwardData");
    assertArrayEquals(first[2], second[2], "backwardWeight");
  }

  /** Returns the forward output, the input gradient and the weight gradient. */
  private static float[][] runAll(
      Storage x, Storage weight, Storage bias, Storage gradOut, Conv2dGeometry g) {
    Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
    Storage gradInput = Storage.allocate(DType.FLOAT32, g.inputSize());
    Storage gradWeight = Storage.allocate(DType.FLOAT32, g.weightSize());
    Conv2dKernels.forward(x, weight, bias, g, out);
    Conv2dKernels.backwardData(gradOut, weight, g, gradInput);
    Conv2dKernels.backwardWeight(gradOut, x, g, gradWeight);
    return new float[][] {out.floats(), gradInput.floats(), gradWeight.floats()};
  }
}
