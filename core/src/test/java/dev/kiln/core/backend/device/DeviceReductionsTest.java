package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.SUMMED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.DeviceTestSupport.f64;
import static dev.kiln.core.backend.device.DeviceTestSupport.randomFloats;
import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.ReduceKernels;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.tensor.Storage;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests {@link DeviceReductions} against {@link ReduceKernels} run in float64. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceReductionsTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  /** An odd [3, 37, 5] input: 37 elements per output along dimension 1, more than one warp. */
  private static final int[] SHAPE = {3, 37, 5};

  /** Reductions over one middle dimension, the two outer ones, and everything. */
  private static final boolean[][] REDUCED = {
    {false, true, false}, {true, true, false}, {true, true, true}
  };

  @ParameterizedTest
  @MethodSource(DEVICES)
  void sumAndMeanMatchTheCpu(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceReductions reductions = new DeviceReductions(runtime);
    float[] x = randomFloats(new Random(DeviceTestSupport.SEED), 3 * 37 * 5);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer input = buffers.of(x);
      for (boolean[] reduced : REDUCED) {
        int outputs = outputs(reduced);
        long count = x.length / outputs;
        Storage expected = f64(outputs);
        ReduceKernels.sum(f64(x), SHAPE, reduced, expected);
        DeviceBuffer out = buffers.filled(outputs);
        reductions.sum(input, SHAPE, reduced, out);
        String quantity = "sum over " + Arrays.toString(reduced);
        assertClose(device, quantity, expected, buffers.read(out, outputs), SUMMED);

        reductions.mean(input, SHAPE, reduced, out);
        double[] mean = new double[outputs];
        for (int o = 0; o < outputs; o++) {
          mean[o] = expected.get(o) / count;
        }
        assertClose(device, "mean of " + quantity, mean, buffers.read(out, outputs), SUMMED);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void varianceMatchesTwoPassFloat64(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceReductions reductions = new DeviceReductions(runtime);
    // A mean far from 0 relative to the spread, where a one-pass formula would cancel badly.
    float[] x = randomFloats(new Random(7), 3 * 37 * 5);
    for (int i = 0; i < x.length; i++) {
      x[i] += 10;
    }
    boolean[] reduced = REDUCED[0];
    int outputs = outputs(reduced);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer input = buffers.of(x);
      DeviceBuffer out = buffers.filled(outputs);
      for (boolean unbiased : new boolean[] {false, true}) {
        reductions.variance(input, SHAPE, reduced, unbiased, out);
        double[] expected = new double[outputs];
        for (int a = 0; a < 3; a++) {
          for (int c = 0; c < 5; c++) {
            double mean = 0;
            for (int b = 0; b < 37; b++) {
              mean += x[(a * 37 + b) * 5 + c];
            }
            mean /= 37;
            double squares = 0;
            for (int b = 0; b < 37; b++) {
              double d = x[(a * 37 + b) * 5 + c] - mean;
              squares += d * d;
            }
            expected[a * 5 + c] = squares / (unbiased ? 36 : 37);
          }
        }
        assertClose(
            device, "variance, unbiased=" + unbiased, expected, buffers.read(out, outputs), SUMMED);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void maxFindsFirstMaximumAndNaN(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceReductions reductions = new DeviceReductions(runtime);
    float[] x = randomFloats(new Random(8), 3 * 37 * 5);
    // Output (0, 0): a tie between positions 4 and 30, where the first must win.
    x[(0 * 37 + 4) * 5] = 5;
    x[(0 * 37 + 30) * 5] = 5;
    // Output (2, 3): a NaN at position 33 beats every number.
    x[(2 * 37 + 33) * 5 + 3] = Float.NaN;
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      for (int dim = 0; dim < 3; dim++) {
        int outputs = x.length / SHAPE[dim];
        Storage expected = f64(outputs);
        int[] expectedIndices = new int[outputs];
        ReduceKernels.max(f64(x), SHAPE, dim, expected, expectedIndices);
        DeviceBuffer values = buffers.filled(outputs);
        DeviceBuffer indices = buffers.of(new int[outputs]);
        reductions.max(buffers.of(x), SHAPE, dim, values, indices);
        assertClose(device, "max along " + dim, expected, buffers.read(values, outputs), ROUNDED);
        assertArrayEquals(
            expectedIndices,
            buffers.readInts(indices, outputs),
            "positions of the maxima along " + dim + " on " + device);
      }
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void rankZeroReducesItsOneElement(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceReductions reductions = new DeviceReductions(runtime);
    int[] scalar = {};
    boolean[] none = {};
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer input = buffers.of(new float[] {-2.5f});
      DeviceBuffer out = buffers.filled(1);

      reductions.sum(input, scalar, none, out);
      assertClose(device, "sum of rank 0", new double[] {-2.5}, buffers.read(out, 1), ROUNDED);

      reductions.mean(input, scalar, none, out);
      assertClose(device, "mean of rank 0", new double[] {-2.5}, buffers.read(out, 1), ROUNDED);

      reductions.scaledSum(input, scalar, none, out, 3.0);
      assertClose(
          device, "sum of rank 0 times 3", new double[] {-7.5}, buffers.read(out, 1), ROUNDED);

      reductions.variance(input, scalar, none, false, out);
      assertClose(device, "variance of rank 0", new double[] {0}, buffers.read(out, 1), ROUNDED);
    }
  }

  @ParameterizedTest
  @MethodSource(DEVICES)
  void flagCountMustMatchRank(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceReductions reductions = new DeviceReductions(runtime);
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer input = buffers.of(new float[] {1});
      DeviceBuffer out = buffers.filled(1);
      for (boolean[] flags : new boolean[][] {{true}, {}}) {
        int[] shape = flags.length == 0 ? new int[] {1} : new int[0];
        var e =
            assertThrows(
                IllegalArgumentException.class,
                () -> reductions.sum(input, shape, flags, out),
                "shape " + Arrays.toString(shape) + " with " + flags.length + " flags");
        assertTrue(e.getMessage().contains("one flag per dimension"), e.getMessage());
      }
    }
  }

  private static int outputs(boolean[] reduced) {
    int outputs = 1;
    for (int d = 0; d < SHAPE.length; d++) {
      outputs *= reduced[d] ? 1 : SHAPE[d];
    }
    return outputs;
  }
}
