package dev.kiln.nn.optim;

import dev.kiln.core.backend.cpu.OptimizerKernels;
import dev.kiln.core.tensor.DeviceStorage;
import dev.kiln.core.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
 * decay, with the formulas of PyTorch's {@code torch.optim.SGD}:
 *
 * <pre>
 * g = grad + weightDecay * param
 * b = g on a parameter's first step, then b = momentum * b + (1 - dampening) * g
 * param -= learningRate * (nesterov ? g + momentum * b : b)     (momentum > 0)
 * param -= learningRate * g                                     (momentum = 0)
 * </pre>
 *
 * <pre>{@code
 * var optimizer = new SGD(model.parameters(), 0.1).momentum(0.9).weightDecay(5e-4);
 * }</pre>
 */
public final class SGD extends Optimizer {
  private static final String MOMENTUM_BUFFER = "momentum_buffer";

  private double momentum;
  private double dampening;
  private boolean nesterov;
  private double weightDecay;

  /** Creates plain SGD (no momentum, no weight decay) with the given learning rate. */
  public SGD(List<Tensor> parameters, double learningRate) {
    super(parameters, learningRate);
  }

  /** Sets the learning rate and returns this optimizer. */
  public SGD learningRate(double learningRate) {
    setLearningRate(learningRate);
    return this;
  }

  /** Sets the momentum factor μ (default 0, which keeps no buffer) and returns this optimizer. */
  public SGD momentum(double momentum) {
    requireAtLeastZero("momentum", momentum);
    this.momentum = momentum;
    return this;
  }

  /** Sets the dampening applied to new gradients in the buffer (default 0). */
  public SGD dampening(double dampening) {
    requireAtLeastZero("dampening", dampening);
    this.dampening = dampening;
    return this;
  }

  /** Turns Nesterov momentum on or off (default off); it needs momentum > 0 and dampening 0. */
  public SGD nesterov(boolean nesterov) {
    this.nesterov = nesterov;
    return this;
  }

  /** Sets the L2 penalty λ added to the gradient as λ·param (default 0). */
  public SGD weightDecay(double weightDecay) {
    requireAtLeastZero("weightDecay", weightDecay);
    this.weightDecay = weightDecay;
    return this;
  }

  public double momentum() {
    return momentum;
  }

  public double dampening() {
    return dampening;
  }

  public boolean nesterov() {
    return nesterov;
  }

  public double weightDecay() {
    return weightDecay;
  }

  /** Rejects Nesterov momentum without momentum or with dampening, as PyTorch does. */
  @Override
  protected void validateSettings() {
    if (nesterov && (momentum <= 0 || dampening != 0)) {
      throw new IllegalStateException(
          "SGD: Nesterov momentum requires momentum > 0 and dampening 0, but momentum is "
              + momentum
              + " and dampening is "
              + dampening
              + "; set momentum(...) and dampening(0), or nesterov(false)");
    }
  }

  @Override
  protected List<String> stateNames() {
    return List.of(MOMENTUM_BUFFER);
  }

  @Override
  protected void update(int index, Tensor parameter, Tensor grad, Map<String, Tensor> state) {
    var settings =
        new OptimizerKernels.SgdSettings(
            learningRate(), momentum, dampening, nesterov, weightDecay);
    Tensor buffer = null;
    boolean firstStep = false;
    if (momentum != 0) {
      buffer = state.get(MOMENTUM_BUFFER);
      firstStep = buffer == null;
      if (firstStep) {
        buffer = Tensor.zerosLike(parameter);
        state.put(MOMENTUM_BUFFER, buffer);
      }
    }

    if (parameter.device().isCpu()) {
      OptimizerKernels.sgdStep(
          settings,
          parameter.storage(),
          grad.storage(),
          buffer == null ? null : buffer.storage(),
          firstStep);
    } else {
      // bufferOf gives null for a null buffer, which the kernel reads as "no momentum".
      DeviceStorage.kernelsOf(parameter)
          .optimizers()
          .sgd(
              settings,
              DeviceStorage.bufferOf(parameter),
              DeviceStorage.bufferOf(grad),
              DeviceStorage.bufferOf(buffer),
              parameter.numel(),
              firstStep);
    }
  }
}
