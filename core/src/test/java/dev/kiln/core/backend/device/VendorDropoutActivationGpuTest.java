package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.ROUNDED;
import static dev.kiln.core.backend.device.DeviceTestSupport.assertClose;
import static dev.kiln.core.backend.device.VendorContractSupport.ACTIVATION;
import static dev.kiln.core.backend.device.VendorContractSupport.nans;
import static dev.kiln.core.backend.device.VendorContractSupport.nonZeroFloats;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.cuda.libraries.VendorDnn.ActivationMode;
import dev.kiln.core.backend.device.VendorContractSupport.Bindings;
import dev.kiln.core.backend.device.VendorContractSupport.Buffers;
import dev.kiln.core.backend.device.VendorContractSupport.ForEachBinding;
import dev.kiln.core.backend.device.VendorContractSupport.Opened;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;

/**
 * Checks the elementwise calls of {@link VendorDnn}, for each binding of {@link
 * VendorContractSupport}. Dropout's mask is random, so its checks are statistical, and the backward
 * call must reuse the mask of its forward call. The activations are checked against float64
 * functions.
 */
class VendorDropoutActivationGpuTest {
  private static final Bindings BINDINGS = new Bindings(VendorDropoutActivationGpuTest.class);

  private final Random random = new Random(DeviceTestSupport.SEED);

  @AfterAll
  static void closeBindings() {
    BINDINGS.close();
  }

  // cuDNN dropout.

  /** Elements per dropout call: enough for a tight bound on the kept fraction. */
  private static final int DROPOUT_ELEMENTS = 10_001;

  private static final float DROPOUT_PROBABILITY = 0.3f;

  @ForEachBinding
  void dropoutReserveSize(String binding) {
    VendorDnn dnn = BINDINGS.open(binding).dnn();
    long small = dnn.dropoutReserveBytes(1000);
    long large = dnn.dropoutReserveBytes(4000);
    // The mask needs at least one bit per element.
    assertTrue(small >= 1000 / 8, "reserve for 1000 elements is only " + small + " bytes");
    assertTrue(large >= small, "reserve shrank from " + small + " to " + large + " bytes");
  }

  @ForEachBinding
  void dropoutForward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = nonZeroFloats(random, DROPOUT_ELEMENTS);
    try (Buffers buffers = new Buffers(opened.memory())) {
      boolean[] first = dropout(dnn, buffers, x, 101);
      boolean[] second = dropout(dnn, buffers, x, 101);

      assertKeptFraction(first, "first call");
      assertKeptFraction(second, "second call");
      // Two independent masks differ at each element with probability 2 p (1 - p) = 0.42, so in
      // about 4200 of 10001 places with a standard deviation of 49. Requiring 2100 is 43 standard
      // deviations below that, yet a state that did not advance differs nowhere.
      int differ = 0;
      for (int i = 0; i < x.length; i++) {
        differ += first[i] != second[i] ? 1 : 0;
      }
      assertTrue(
          differ >= 2100,
          "the second call with the same probability and seed must draw a new mask, but the two"
              + " masks differ in only "
              + differ
              + " of "
              + x.length
              + " elements");
    }
  }

  @ForEachBinding
  void dropoutBackward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    int n = DROPOUT_ELEMENTS;
    float p = DROPOUT_PROBABILITY;
    long reserveBytes = dnn.dropoutReserveBytes(n);
    int reserveFloats = (int) ((reserveBytes + Float.BYTES - 1) / Float.BYTES);
    float[] x = nonZeroFloats(random, n);
    float[] dy = nonZeroFloats(random, n);
    try (Buffers buffers = new Buffers(opened.memory())) {
      long input = buffers.of(x);
      long[] reserves = {
        buffers.of(new float[reserveFloats]), buffers.of(new float[reserveFloats])
      };
      long[] outputs = {buffers.of(nans(n)), buffers.of(nans(n))};
      for (int call = 0; call < 2; call++) {
        dnn.dropoutForward(p, 202, n, input, outputs[call], reserves[call], reserveBytes);
      }

      // Backward on each reserve in turn must apply that forward call's mask, whatever the other
      // call drew, so the mask comes from the reserve and not from the current random state.
      for (int call = 0; call < 2; call++) {
        float[] y = buffers.read(outputs[call], n);
        long gradient = buffers.of(nans(n));

        dnn.dropoutBackward(p, 202, n, buffers.of(dy), gradient, reserves[call], reserveBytes);

        double[] expected = new double[n];
        for (int i = 0; i < n; i++) {
          expected[i] = y[i] == 0 ? 0 : dy[i] / (1.0 - p);
        }
        assertClose(
            binding,
            "dropout input gradient from the mask of call " + (call + 1),
            expected,
            buffers.read(gradient, n),
            ROUNDED);
      }
    }
  }

  /**
   * Runs one dropout forward call on {@code x}, checks that each output is 0 or x / (1 - p), and
   * returns which elements were kept.
   */
  private boolean[] dropout(VendorDnn dnn, Buffers buffers, float[] x, long seed) {
    int n = x.length;
    float p = DROPOUT_PROBABILITY;
    long reserveBytes = dnn.dropoutReserveBytes(n);
    long reserve = buffers.of(new float[(int) ((reserveBytes + Float.BYTES - 1) / Float.BYTES)]);
    long y = buffers.of(nans(n));

    dnn.dropoutForward(p, seed, n, buffers.of(x), y, reserve, reserveBytes);

    float[] out = buffers.read(y, n);
    boolean[] kept = new boolean[n];
    for (int i = 0; i < n; i++) {
      kept[i] = out[i] != 0;
      double scaled = x[i] / (1.0 - p);
      // ROUNDED allows for a binding that multiplies by a float32 1 / (1 - p), which rounds twice.
      double allowed = ROUNDED.relative() * Math.abs(scaled) + ROUNDED.absolute();
      assertTrue(
          !kept[i] || Math.abs(out[i] - scaled) <= allowed,
          "dropout output " + i + " is " + out[i] + ", neither 0 nor x / (1 - p) = " + scaled);
    }
    return kept;
  }

  /**
   * Checks that the kept count is near n (1 - p). It is binomial with mean 7000.7 and standard
   * deviation sqrt(n p (1 - p)) = 45.8 for n = 10001 and p = 0.3, so a correct binding falls
   * outside 5 standard deviations (229) with probability below 1e-6. A binding that drops with
   * probability 1 - p instead keeps about 3000.
   */
  private static void assertKeptFraction(boolean[] kept, String call) {
    int count = 0;
    for (boolean k : kept) {
      count += k ? 1 : 0;
    }
    double mean = kept.length * (1.0 - DROPOUT_PROBABILITY);
    double deviation = Math.sqrt(kept.length * DROPOUT_PROBABILITY * (1.0 - DROPOUT_PROBABILITY));
    assertTrue(
        Math.abs(count - mean) <= 5 * deviation,
        call
            + " kept "
            + count
            + " of "
            + kept.length
            + " elements, expected "
            + mean
            + " +- "
            + 5 * deviation);
  }

  // cuDNN activations.

  /** Elements per activation call: odd, so that a vectorized path needs a tail. */
  private static final int ACTIVATION_ELEMENTS = 1001;

  @ForEachBinding
  void activationForward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = activationInputs(random);
    for (ActivationMode mode : ActivationMode.values()) {
      try (Buffers buffers = new Buffers(opened.memory())) {
        long y = buffers.of(nans(x.length));

        dnn.activationForward(mode, x.length, buffers.of(x), y);

        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
          expected[i] = activation(mode, x[i]);
        }
        assertClose(binding, mode + " output", expected, buffers.read(y, x.length), ACTIVATION);
      }
    }
  }

  @ForEachBinding
  void activationBackward(String binding) {
    Opened opened = BINDINGS.open(binding);
    VendorDnn dnn = opened.dnn();
    float[] x = activationInputs(random);
    float[] dy = DeviceTestSupport.randomFloats(random, x.length);
    for (ActivationMode mode : ActivationMode.values()) {
      // y is f(x) rounded to float32, as a forward call stores it.
      float[] y = new float[x.length];
      double[] expected = new double[x.length];
      for (int i = 0; i < x.length; i++) {
        y[i] = (float) activation(mode, x[i]);
        double slope =
            switch (mode) {
              case SIGMOID -> y[i] * (1.0 - y[i]);
              case RELU -> x[i] > 0 ? 1 : 0;
              case TANH -> 1.0 - (double) y[i] * y[i];
            };
        expected[i] = slope * dy[i];
      }
      try (Buffers buffers = new Buffers(opened.memory())) {
        long dx = buffers.of(nans(x.length));

        dnn.activationBackward(mode, x.length, buffers.of(y), buffers.of(dy), buffers.of(x), dx);

        assertClose(
            binding, mode + " input gradient", expected, buffers.read(dx, x.length), ACTIVATION);
      }
    }
  }

  /** Returns inputs spread over [-4, 4), where sigmoid and tanh are neither linear nor flat. */
  private static float[] activationInputs(Random random) {
    float[] x = nonZeroFloats(random, ACTIVATION_ELEMENTS);
    for (int i = 0; i < x.length; i++) {
      x[i] *= 4;
    }
    return x;
  }

  private static double activation(ActivationMode mode, double x) {
    return switch (mode) {
      case SIGMOID -> 1 / (1 + Math.exp(-x));
      case RELU -> Math.max(0, x);
      case TANH -> Math.tanh(x);
    };
  }
}
