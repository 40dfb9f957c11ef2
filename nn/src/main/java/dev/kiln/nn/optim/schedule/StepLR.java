package dev.kiln.nn.optim.schedule;

import dev.kiln.nn.optim.Optimizer;

/**
 * Multiplies the learning rate by {@code gamma} every {@code stepSize} epochs, as PyTorch's {@code
 * StepLR}: lr(epoch) = baseLr * gamma^floor(epoch / stepSize).
 */
public final class StepLR extends LrScheduler {
  private final int stepSize;
  private final double gamma;

  /**
   * Creates the schedule.
   *
   * @param stepSize epochs between decays, at least 1
   * @param gamma factor applied at each decay, at least 0 (PyTorch's default is 0.1)
   */
  public StepLR(Optimizer optimizer, int stepSize, double gamma) {
    super(optimizer);
    if (stepSize < 1) {
      throw new IllegalArgumentException("StepLR: stepSize must be >= 1, got " + stepSize);
    }
    if (!(gamma >= 0)) {
      throw new IllegalArgumentException("StepLR: gamma must be >= 0, got " + gamma);
    }
    this.stepSize = stepSize;
    this.gamma = gamma;
  }

  @Override
  public double learningRateAt(int epoch) {
    requireEpoch(epoch);
    return baseLearningRate() * Math.pow(gamma, epoch / stepSize);
  }
}
