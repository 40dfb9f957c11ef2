package dev.kiln.core.backend.cpu;

import static dev.kiln.core.backend.cpu.KernelAsserts.randomStorage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Compares the threaded batch norm kernels with their serial reference loops bit for bit. The core
 * tests run with {@code kiln.threads=2}, so the channels are split into two chunks whenever there
 * are at least two.
 */
class FastBatchNormTest {

  @ParameterizedTest(name = "n={0} c={1} s={2} {3}")
  @CsvSource({
    "1, 3, 25, FLOAT32", // batch 1 with odd sizes
    "4, 5, 1, FLOAT32", // 1d batch norm
    "3, 1, 7, FLOAT32", // one channel, one chunk
    "2, 7, 30, FLOAT32",
    "2, 7, 30, FLOAT64"
  })
  void forwardTrainingMatchesSerial(int n, int c, int s, DType dtype) {
    Storage x = randomStorage(dtype, n * c * s, 21);
    Storage gamma = randomStorage(dtype, c, 22);
    Storage beta = randomStorage(dtype, c, 23);
    Storage serialMean = randomStorage(dtype, c, 24);
    Storage serialVar = randomStorage(dtype, c, 25);
    Storage threadedMean = serialMean.copy();
    Storage threadedVar = serialVar.copy();

    Storage serialOut = Storage.allocate(dtype, n * c * s);
    double[] serialSaveMean = new double[c];
    double[] serialInvStd = new double[c];
    BatchNormKernels.trainChannels(
        x,
        n,
        c,
        s,
        gamma,
        beta,
        1e-5,
        serialOut,
        serialSaveMean,
        serialInvStd,
        serialMean,
        serialVar,
        0.1,
        0,
        c);
    Storage threadedOut = KernelAsserts.nanStorage(dtype, n * c * s);
    double[] threadedSaveMean = new double[c];
    double[] threadedInvStd = new double[c];
    BatchNormKernels.forwardTraining(
        x,
        n,
        c,
        s,
        gamma,
        beta,
        1e-5,
        threadedOut,
        threadedSaveMean,
        threadedInvStd,
        threadedMean,
        threadedVar,
        0.1);

    assertArrayEquals(KernelAsserts.values(serialOut), KernelAsserts.values(threadedOut), "out");
    assertArrayEquals(serialSaveMean, threadedSaveMean, "saveMean");
    assertArrayEquals(serialInvStd, threadedInvStd, "saveInvStd");
    assertArrayEquals(
        KernelAsserts.values(serialMean), KernelAsserts.values(threadedMean), "runningMean");
    assertArrayEquals(
        KernelAsserts.values(serialVar), KernelAsserts.values(threadedVar), "runningVar");
  }

  @ParameterizedTest(name = "n={0} c={1} s={2} gamma={3}")
  @CsvSource({"1, 3, 25, true", "4, 5, 1, true", "3, 1, 7, false", "2, 7, 30, true"})
  void backwardTrainingMatchesPlain(int n, int c, int s, boolean withGamma) {
    DType dtype = DType.FLOAT32;
    Storage x = randomStorage(dtype, n * c * s, 31);
    Storage gradOut = randomStorage(dtype, n * c * s, 32);
    Storage gamma = withGamma ? randomStorage(dtype, c, 33) : null;
    double[] saveMean = new double[c];
    double[] saveInvStd = new double[c];
    BatchNormKernels.forwardTraining(
        x,
        n,
        c,
        s,
        gamma,
        null,
        1e-5,
        Storage.allocate(dtype, n * c * s),
        saveMean,
        saveInvStd,
        null,
        null,
        0.1);

    Storage expected = Storage.allocate(dtype, n * c * s);
    Storage expectedGamma = Storage.allocate(dtype, c);
    Storage expectedBeta = Storage.allocate(dtype, c);
    BatchNormKernels.backwardTrainingPlain(
        gradOut, x, n, c, s, gamma, saveMean, saveInvStd, expected, expectedGamma, expectedBeta);
    Storage actual = KernelAsserts.nanStorage(dtype, n * c * s);
    Storage actualGamma = KernelAsserts.nanStorage(dtype, c);
    Storage actualBeta = KernelAsserts.nanStorage(dtype, c);
    BatchNormKernels.backwardTraining(
        gradOut, x, n, c, s, gamma, saveMean, saveInvStd, actual, actualGamma, actualBeta);

    assertArrayEquals(expected.floats(), actual.floats(), "gradInput");
    assertArrayEquals(expectedGamma.floats(), actualGamma.floats(), "gradGamma");
    assertArrayEquals(expectedBeta.floats(), actualBeta.floats(), "gradBeta");
  }
}
