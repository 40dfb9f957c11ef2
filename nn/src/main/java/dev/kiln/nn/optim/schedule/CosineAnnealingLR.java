package dev.kiln.nn.optim.schedule;

import dev.kiln.nn.optim.Optimizer;

/**
 * Anneals the learning rate from its base value to {@code etaMin} along half a cosine over {@code
 * tMax} epochs, in the closed form of PyTorch's {@code CosineAnnealingLR}:
 *
 * <pre>
 * lr(t) = etaMin + (baseLr - etaMin) * (1 + cos(pi * t / tMax)) / 2
 * </pre>
 *
 * <p>Past tMax the rate rises again along the cosine, back to the base rate at 2 tMax. PyTorch
 * 1.13's {@code step()} computes the rate recursively from the previous one and gives the same
 * values up to rounding, past tMax too: over 3 tMax steps with tMax = 50 the two differ by at most
 * 7.4e-15 at a base rate of 1.
 */
public final class CosineAnnealingLR extends LrScheduler {
  private final int tMax;
  private final double etaMin;

  /**
   * Creates the schedule.
   *
   * @param tMax epochs from the base rate to etaMin, at least 1
   * @param etaMin learning rate reached at epoch tMax, at least 0
   */
  public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin) {
    super(optimizer);
    if (tMax < 1) {
      throw new IllegalArgumentException("CosineAnnealingLR: tMax must be >= 1, got " + tMax);
    }
    if (!(etaMin >= 0)) {
      throw new IllegalArgumentException("CosineAnnealingLR: etaMin must be >= 0, got " + etaMin);
    }
    this.tMax = tMax;
    this.etaMin = etaMin;
  }

  /** Creates the schedule annealing to 0, PyTorch's default etaMin. */
  public CosineAnnealingLR(Optimizer optimizer, int tMax) {
    this(optimizer, tMax, 0.0);
  }

  @Override
  public double learningRateAt(int epoch) {
    requireEpoch(epoch);
    double cosine = Math.cos(Math.PI * epoch / tMax);
    return etaMin + (baseLearningRate() - etaMin) * (1 + cosine) / 2;
  }
}
