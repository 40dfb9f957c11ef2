package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Replays PyTorch's float64 optimizer trajectories: from {@code param_start}, feed {@code grads[s]}
 * at step s and compare the parameter with {@code params[s]} after every step.
 */
class OptimizerGoldenTest {
  /**
   * Float64 runs the same formulas in the same precision as the reference, so only the order of
   * rounding differs. 1e-9 leaves room for that over six steps but none for a wrong formula.
   */
  private static final double FLOAT64_TOLERANCE = 1e-9;

  /**
   * Float32 parameters, gradients and state are rounded to 24-bit mantissas (relative 6e-8 each) at
   * every step, and Adam divides by sqrt(v), which magnifies the rounding of small gradients.
   */
  private static final double FLOAT32_TOLERANCE = 1e-4;

  @ParameterizedTest(name = "{0} in {1}")
  @CsvSource({
    "adam.safetensors, FLOAT64",
    "adam.safetensors, FLOAT32",
    "adam_weight_decay.safetensors, FLOAT64",
    "adam_weight_decay.safetensors, FLOAT32",
    "adamw.safetensors, FLOAT64",
    "adamw.safetensors, FLOAT32",
    "sgd_momentum.safetensors, FLOAT64",
    "sgd_momentum.safetensors, FLOAT32"
  })
  void trajectoryMatchesPyTorch(String file, DType dtype) {
    GoldenCase golden = GoldenCases.load(file);
    double tolerance = dtype == DType.FLOAT64 ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
    Tensor grads = golden.tensor("grads");
    Tensor expected = golden.tensor("params");
    int steps = golden.metaInt("steps");

    Tensor param = golden.tensor("param_start").to(dtype).copy().requiresGrad(true);
    Optimizer optimizer = build(golden, param);

    double worst = 0;
    for (int s = 0; s < steps; s++) {
      param.setGrad(grads.slice(0, s, s + 1).reshape(param.shape()).to(dtype).copy());
      optimizer.step();

      double error = maxRelativeError(param, expected.slice(0, s, s + 1).reshape(param.shape()));
      worst = Math.max(worst, error);
      assertTrue(
          error <= tolerance,
          file + " " + dtype + " step " + (s + 1) + ": max relative error " + error);
    }
    System.out.printf("%s %s: worst relative error %.3g%n", file, dtype, worst);
  }

  /** Builds the optimizer named by the case's {@code layer}, with its non-default settings. */
  private static Optimizer build(GoldenCase golden, Tensor param) {
    List<Tensor> params = List.of(param);
    String kind = golden.meta("layer").strip();
    return switch (kind) {
      case "sgd" -> {
        SGD sgd = new SGD(params, golden.metaDouble("lr"));
        if (golden.metadata().containsKey("momentum")) {
          sgd.momentum(golden.metaDouble("momentum"));
        }
        if (golden.metadata().containsKey("dampening")) {
          sgd.dampening(golden.metaDouble("dampening"));
        }
        if (golden.metadata().containsKey("nesterov")) {
          sgd.nesterov(golden.metaBool("nesterov"));
        }
        if (golden.metadata().containsKey("weight_decay")) {
          sgd.weightDecay(golden.metaDouble("weight_decay"));
        }
        yield sgd;
      }
      case "adam" -> configure(golden, new Adam(params));
      case "adamw" -> configure(golden, new AdamW(params));
      default -> throw new IllegalArgumentException("unknown optimizer kind " + kind);
    };
  }

  private static Adam configure(GoldenCase golden, Adam adam) {
    if (golden.metadata().containsKey("lr")) {
      adam.learningRate(golden.metaDouble("lr"));
    }
    if (golden.metadata().containsKey("betas")) {
      double[] betas = golden.metaDoubles("betas");
      adam.betas(betas[0], betas[1]);
    }
    if (golden.metadata().containsKey("eps")) {
      adam.eps(golden.metaDouble("eps"));
    }
    if (golden.metadata().containsKey("weight_decay")) {
      adam.weightDecay(golden.metaDouble("weight_decay"));
    }
    return adam;
  }

  private static double maxRelativeError(Tensor actual, Tensor expected) {
    double worst = 0;
    for (int i = 0; i < expected.numel(); i++) {
      double reference = expected.storage().get(i);
      double difference = Math.abs(actual.storage().get(i) - reference);
      worst = Math.max(worst, difference / Math.max(Math.abs(reference), Double.MIN_NORMAL));
    }
    return worst;
  }
}
