package dev.kiln.nn.optim;

import dev.kiln.core.backend.cpu.OptimizerKernels;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.DeviceStorage;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Adam with optional L2 weight decay, with the formulas of PyTorch's {@code torch.optim.Adam}. For
 * parameter step t (starting at 1):
 *
 * <pre>
 * g = grad + weightDecay * param
 * m = beta1 * m + (1 - beta1) * g,   v = beta2 * v + (1 - beta2) * g^2
 * param -= learningRate * m̂ / (sqrt(v̂) + eps),   m̂ = m / (1 - beta1^t),   v̂ = v / (1 - beta2^t)
 * </pre>
 *
 * The kernels (the CPU's {@code OptimizerKernels.adamStep}, and {@code kiln_optimizers_adam} and
 * {@code kiln_optimizers_adamw} in {@code optimizers.cu}) compute the same update without forming
 * m̂ and v̂: they divide the learning rate by 1 - beta1^t and sqrt(v) by sqrt(1 - beta2^t). m and v
 * are the state tensors {@code exp_avg} and {@code exp_avg_sq}, named as in PyTorch's state dict.
 *
 * <p>Defaults are PyTorch's: learning rate 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
 * Each parameter counts its own steps, so a parameter frozen for a while keeps its bias correction.
 * {@link AdamW} decouples the decay from the gradient.
 *
 * <pre>{@code
 * var optimizer = new Adam(model.parameters()).learningRate(0.01).weightDecay(0.1);
 * }</pre>
 */
public class Adam extends Optimizer {
  private static final String EXP_AVG = "exp_avg";
  private static final String EXP_AVG_SQ = "exp_avg_sq";

  private final boolean decoupledDecay;
  private double beta1 = 0.9;
  private double beta2 = 0.999;
  private double eps = 1e-8;
  private double weightDecay;

  /** Creates Adam with PyTorch's defaults. */
  public Adam(List<Tensor> parameters) {
    this(parameters, false, 0.0);
  }

  /** Creates Adam or, with {@code decoupledDecay}, AdamW. */
  Adam(List<Tensor> parameters, boolean decoupledDecay, double weightDecay) {
    super(parameters, 1e-3);
    this.decoupledDecay = decoupledDecay;
    this.weightDecay = weightDecay;
  }

  /** Sets the learning rate (default 1e-3) and returns this optimizer. */
  public Adam learningRate(double learningRate) {
    setLearningRate(learningRate);
    return this;
  }

  /** Sets the decay rates of the first and second moment averages, each in [0, 1). */
  public Adam betas(double beta1, double beta2) {
    requireBeta("beta1", beta1);
    requireBeta("beta2", beta2);
    this.beta1 = beta1;
    this.beta2 = beta2;
    return this;
  }

  /** Sets the term added to the denominator for numerical stability (default 1e-8). */
  public Adam eps(double eps) {
    requireAtLeastZero("eps", eps);
    this.eps = eps;
    return this;
  }

  /** Sets the weight decay λ (default 0 for Adam, 0.01 for AdamW). */
  public Adam weightDecay(double weightDecay) {
    requireAtLeastZero("weightDecay", weightDecay);
    this.weightDecay = weightDecay;
    return this;
  }

  public double beta1() {
    return beta1;
  }

  public double beta2() {
    return beta2;
  }

  public double eps() {
    return eps;
  }

  public double weightDecay() {
    return weightDecay;
  }

  private void requireBeta(String setting, double value) {
    if (!(value >= 0 && value < 1)) {
      throw new IllegalArgumentException(
          name() + ": " + setting + " must be in [0, 1), got " + value);
    }
  }

  @Override
  protected List<String> stateNames() {
    return List.of(STEP, EXP_AVG, EXP_AVG_SQ);
  }

  @Override
  protected void update(int index, Tensor parameter, Tensor grad, Map<String, Tensor> state) {
    if (state.isEmpty()) {
      // The step count stays on the CPU, where the bias corrections are computed. The moments
      // live beside the parameter, which zerosLike gives.
      state.put(STEP, Tensor.scalar(0, DType.FLOAT64));
      state.put(EXP_AVG, Tensor.zerosLike(parameter));
      state.put(EXP_AVG_SQ, Tensor.zerosLike(parameter));
    }

    Tensor stepCount = state.get(STEP);
    long step = (long) stepCount.item() + 1;
    stepCount.storage().set(0, step);

    var settings =
        new OptimizerKernels.AdamSettings(
            learningRate(), beta1, beta2, eps, weightDecay, decoupledDecay);
    Tensor expAvg = state.get(EXP_AVG);
    Tensor expAvgSq = state.get(EXP_AVG_SQ);
    if (parameter.device().isCpu()) {
      OptimizerKernels.adamStep(
          settings,
          step,
          parameter.storage(),
          grad.storage(),
          expAvg.storage(),
          expAvgSq.storage());
    } else {
      DeviceStorage.kernelsOf(parameter)
          .optimizers()
          .adam(
              settings,
              step,
              DeviceStorage.bufferOf(parameter),
              DeviceStorage.bufferOf(grad),
              DeviceStorage.bufferOf(expAvg),
              DeviceStorage.bufferOf(expAvgSq),
              parameter.numel());
    }
  }
}
