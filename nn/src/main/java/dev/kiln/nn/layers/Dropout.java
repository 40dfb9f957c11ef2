package dev.kiln.nn.layers;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import java.util.Objects;

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the others by 1
 * / (1 - p); in evaluation, passes the input through.
 */
public class Dropout extends Module {
  private final double p;
  private final Generator generator;

  /** Dropout with p = 0.5 drawing from the global generator. */
  public Dropout() {
    this(0.5);
  }

  public Dropout(double p) {
    this(p, Generator.global());
  }

  /**
   * Dropout with probability {@code p} drawing its masks from {@code generator}.
   *
   * @throws IllegalArgumentException if {@code p} is outside [0, 1]
   * @throws NullPointerException if {@code generator} is null
   */
  public Dropout(double p, Generator generator) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("dropout probability must be in [0, 1], got " + p);
    }
    this.p = p;
    this.generator =
        Objects.requireNonNull(
            generator,
            "dropout needs a generator for its masks: pass one, or use new Dropout(p) to draw"
                + " from the global generator");
  }

  public double p() {
    return p;
  }

  /** Returns the generator that the training masks are drawn from. */
  public Generator generator() {
    return generator;
  }

  @Override
  public Tensor forward(Tensor input) {
    return dev.kiln.core.ops.Dropout.dropout(input, p, isTraining(), generator);
  }

  @Override
  protected String extraRepr() {
    return "p=" + p;
  }
}
