package dev.kiln.nn.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.ops.Reduction;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import dev.kiln.nn.golden.GoldenRun;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Compares the losses with PyTorch's float64 results, in float64 and float32 on the CPU and in
 * float32 on every available device, and checks their names and settings.
 */
class LossGoldenTest {

  /**
   * Both sides compute in float64 and differ only in the order of the sum and in how each formula
   * rounds (measured below 3e-16 on these cases), so 1e-9 still catches a wrong formula or scale.
   */
  private static final double FLOAT64_TOLERANCE = 1e-9;

  /**
   * Inputs rounded to float32 move x − t by up to 2⁻²⁴·(|x| + |t|). For the smallest differences in
   * these cases (|d| ≈ 0.04 with |x| up to 5) that bound is about 1.5e-5 relative, and each
   * gradient is rounded to float32 once more. The measured worst error is below 2e-7.
   */
  private static final double FLOAT32_TOLERANCE = 1e-4;

  /**
   * A device computes in float32 as the CPU does, from the same rounded inputs, so the float32
   * bound above applies. Its kernels may sum the elements in another order, and on a GPU nvcc fuses
   * a * b + c into one rounding. Either changes a rounding error of the same size as the CPU's
   * float32 run has.
   */
  private static final double DEVICE_TOLERANCE = FLOAT32_TOLERANCE;

  private static final List<String> FILES =
      List.of("mse_loss.safetensors", "l1_loss.safetensors", "smooth_l1_loss.safetensors");

  /** Every file in every run of {@link GoldenRun#all()}, with the run's tolerance. */
  static Stream<Arguments> goldenCases() {
    List<GoldenRun> runs = GoldenRun.all().toList();
    List<Arguments> cases = new ArrayList<>();
    for (String file : FILES) {
      for (GoldenRun run : runs) {
        cases.add(Arguments.of(file, run, toleranceOf(run)));
      }
    }
    return cases.stream();
  }

  private static double toleranceOf(GoldenRun run) {
    if (!run.device().isCpu()) {
      return DEVICE_TOLERANCE;
    }
    return run.dtype() == DType.FLOAT64 ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
  }

  /** Returns a case's tensor in the run's dtype, as a leaf on the run's device. */
  private static Tensor input(GoldenCase golden, String name, GoldenRun run) {
    return golden.tensor(name).to(run.dtype()).to(run.device()).detach();
  }

  /** Builds the loss that a case's metadata describes: its {@code layer} and settings. */
  private static Loss lossFor(GoldenCase golden) {
    Reduction reduction = Reduction.valueOf(golden.meta("reduction").toUpperCase(Locale.ROOT));
    return switch (golden.meta("layer")) {
      case "mse_loss" -> new MSELoss(reduction);
      case "l1_loss" -> new L1Loss(reduction);
      case "smooth_l1_loss" -> new SmoothL1Loss(golden.metaDouble("beta"), reduction);
      default ->
          throw new IllegalArgumentException(
              "golden layer " + golden.meta("layer") + " has no matching loss: add it to lossFor");
    };
  }

  /**
   * Returns the largest |actual − expected| / |expected| over the elements, copying {@code actual}
   * to the CPU first.
   */
  private static double maxRelativeError(Tensor expected, Tensor actual) {
    assertArrayEquals(expected.shape(), actual.shape(), "shape");
    actual = actual.detach().to(Device.CPU);
    double worst = 0;
    for (int i = 0; i < expected.numel(); i++) {
      double e = expected.storage().get(i);
      double a = actual.storage().get(i);
      worst = Math.max(worst, Math.abs(a - e) / Math.max(Math.abs(e), Double.MIN_NORMAL));
    }
    return worst;
  }

  @ParameterizedTest(name = "{0} in {1}")
  @MethodSource("goldenCases")
  void lossMatchesPyTorchReference(String file, GoldenRun run, double tolerance) {
    GoldenCase golden = GoldenCases.load(file);
    Loss loss = lossFor(golden);
    Tensor input = input(golden, "input", run).requiresGrad(true);
    Tensor target = input(golden, "target", run).requiresGrad(true);

    Tensor output = loss.compute(input, target);
    output.backward(input(golden, "grad_output", run));
    assertEquals(run.device(), output.device(), "output device");
    assertEquals(run.device(), input.grad().device(), "grad_input device");

    double outputError = maxRelativeError(golden.tensor("output"), output);
    double gradInputError = maxRelativeError(golden.tensor("grad_input"), input.grad());
    double gradTargetError = maxRelativeError(golden.tensor("grad_target"), target.grad());

    String context = loss + " in " + run + ", tolerance " + tolerance + ": ";
    assertTrue(outputError <= tolerance, context + "output relative error " + outputError);
    assertTrue(
        gradInputError <= tolerance, context + "grad_input relative error " + gradInputError);
    assertTrue(
        gradTargetError <= tolerance, context + "grad_target relative error " + gradTargetError);
  }

  @ParameterizedTest(name = "{0} in {1}")
  @MethodSource("goldenCases")
  void lossOutputIsScalarOfInputDType(String file, GoldenRun run, double tolerance) {
    GoldenCase golden = GoldenCases.load(file);
    Tensor input = input(golden, "input", run);
    Tensor target = input(golden, "target", run);

    Tensor output = lossFor(golden).compute(input, target);

    assertArrayEquals(golden.tensor("output").shape(), output.shape());
    assertEquals(run.dtype(), output.dtype());
    assertEquals(run.device(), output.device());
  }

  /** Names, defaults and argument checks of the loss classes, which need no reference files. */
  @Nested
  class Settings {

    @Test
    void toStringShowsSettings() {
      assertEquals("MSELoss(reduction=mean)", new MSELoss().toString());
      assertEquals("L1Loss(reduction=sum)", new L1Loss(Reduction.SUM).toString());
      assertEquals("SmoothL1Loss(beta=1.0, reduction=mean)", new SmoothL1Loss().toString());
      assertEquals("WingLoss(w=10.0, epsilon=2.0, reduction=mean)", new WingLoss().toString());
    }

    @Test
    void parseReturnsDefaultInstances() {
      assertEquals(new MSELoss(), Losses.parse("mse"));
      assertEquals(new L1Loss(), Losses.parse("l1"));
      assertEquals(new SmoothL1Loss(1.0, Reduction.MEAN), Losses.parse("smoothl1"));
      assertEquals(new WingLoss(10, 2, Reduction.MEAN), Losses.parse("wing"));
    }

    @Test
    void parseIgnoresCaseAndWhitespace() {
      assertEquals(new SmoothL1Loss(), Losses.parse("  SmoothL1 "));
    }

    @Test
    void parsedNameRoundTrips() {
      for (String name : Losses.NAMES) {
        assertEquals(name, Losses.parse(name).name());
      }
    }

    @Test
    void parseUnknownNameListsValidNames() {
      IllegalArgumentException error =
          assertThrows(IllegalArgumentException.class, () -> Losses.parse("huber"));

      String message = error.getMessage();
      assertTrue(message.contains("unknown loss 'huber'"), message);
      assertTrue(message.contains("mse, l1, smoothl1, wing"), message);
    }

    @Test
    void invalidSettingsFailAtConstruction() {
      assertThrows(IllegalArgumentException.class, () -> new SmoothL1Loss(-1));
      assertThrows(IllegalArgumentException.class, () -> new WingLoss(0, 2));
      assertThrows(IllegalArgumentException.class, () -> new WingLoss(10, -2));
      assertThrows(NullPointerException.class, () -> new MSELoss(null));
    }

    @Test
    void wingLossComputesPaperFormula() {
      // d = [2, -12] with w = 10, ε = 2: 10·ln(2) inside the band, 12 − (10 − 10·ln(6)) outside.
      Tensor prediction = Tensor.of(new double[] {2, -12}, 2);
      Tensor target = Tensor.zeros(DType.FLOAT64, 2);

      double value = new WingLoss(10, 2, Reduction.SUM).compute(prediction, target).item();

      assertEquals(2 + 10 * Math.log(12), value, 1e-12);
    }
  }
}
