package dev.kiln.nn.init;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DeviceStorage;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.function.DoubleSupplier;

/**
 * Weight initializers, with PyTorch's definitions of fan-in, fan-out and gain. Each fills a tensor
 * in place from a generator and returns it, except {@link #pytorchDefault}, which fills a layer's
 * weight and bias.
 *
 * <p>For a weight of shape [out, in, k1, k2, ...], fan-in is {@code in * k1 * k2 ...} and fan-out
 * is {@code out * k1 * k2 ...}.
 */
public final class Init {
  private Init() {}

  /** Nonlinearities that set the gain, the factor that keeps activations' variance steady. */
  public enum Nonlinearity {
    LINEAR,
    SIGMOID,
    TANH,
    RELU,
    LEAKY_RELU;

    /** Returns the recommended gain; {@code slope} is used only by LEAKY_RELU. */
    public double gain(double slope) {
      return switch (this) {
        case LINEAR, SIGMOID -> 1.0;
        case TANH -> 5.0 / 3.0;
        case RELU -> Math.sqrt(2.0);
        case LEAKY_RELU -> Math.sqrt(2.0 / (1.0 + slope * slope));
      };
    }
  }

  /** Returns the fan-in of a weight of at least two dimensions. */
  public static int fanIn(Tensor weight) {
    requireMatrix(weight);
    return weight.size(1) * receptiveField(weight);
  }

  /** Returns the fan-out of a weight of at least two dimensions. */
  public static int fanOut(Tensor weight) {
    requireMatrix(weight);
    return weight.size(0) * receptiveField(weight);
  }

  private static int receptiveField(Tensor weight) {
    int size = 1;
    for (int d = 2; d < weight.dim(); d++) {
      size *= weight.size(d);
    }
    return size;
  }

  private static void requireMatrix(Tensor weight) {
    if (weight.dim() < 2) {
      throw new IllegalArgumentException(
          "fan-in and fan-out need a weight of at least 2 dimensions, got shape "
              + Shapes.format(weight.shape()));
    }
  }

  /**
   * Fills with samples drawn uniform in [low, high) in double. A float32 tensor may round a draw
   * just below high up to high.
   */
  public static Tensor uniform(Tensor t, double low, double high, Generator generator) {
    return fill(t, () -> low + (high - low) * generator.nextDouble());
  }

  /** Fills with samples from a normal distribution. */
  public static Tensor normal(Tensor t, double mean, double std, Generator generator) {
    return fill(t, () -> mean + std * generator.nextGaussian());
  }

  /** Fills with one value. */
  public static Tensor constant(Tensor t, double value) {
    return fill(t, () -> value);
  }

  /**
   * Sets the elements of {@code t} in row-major order to successive values of {@code next}. A
   * tensor on a device other than the CPU gets its values in one upload, because a per-element
   * {@code set} there is a copy each. Both paths draw the same values and round them to float32 the
   * same way.
   */
  private static Tensor fill(Tensor t, DoubleSupplier next) {
    Storage storage = t.storage();
    if (storage instanceof DeviceStorage onDevice) {
      float[] values = new float[onDevice.size()];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) next.getAsDouble();
      }
      onDevice.upload(values);
    } else {
      for (int i = 0; i < storage.size(); i++) {
        storage.set(i, next.getAsDouble());
      }
    }
    storage.markModified();
    return t;
  }

  /** Glorot and Bengio (2010): uniform in ±gain·sqrt(6 / (fanIn + fanOut)). */
  public static Tensor xavierUniform(Tensor weight, double gain, Generator generator) {
    double bound = gain * Math.sqrt(6.0 / (fanIn(weight) + fanOut(weight)));
    return uniform(weight, -bound, bound, generator);
  }

  /** Glorot and Bengio (2010): normal with std gain·sqrt(2 / (fanIn + fanOut)). */
  public static Tensor xavierNormal(Tensor weight, double gain, Generator generator) {
    double std = gain * Math.sqrt(2.0 / (fanIn(weight) + fanOut(weight)));
    return normal(weight, 0, std, generator);
  }

  /**
   * He et al. (2015), over the fan-in: uniform in ±gain·sqrt(3 / fanIn), with the gain of the
   * nonlinearity that follows.
   */
  public static Tensor kaimingUniform(
      Tensor weight, Nonlinearity nonlinearity, double slope, Generator generator) {
    double bound = nonlinearity.gain(slope) * Math.sqrt(3.0 / fanIn(weight));
    return uniform(weight, -bound, bound, generator);
  }

  /** He et al. (2015), over the fan-in: normal with std gain / sqrt(fanIn). */
  public static Tensor kaimingNormal(
      Tensor weight, Nonlinearity nonlinearity, double slope, Generator generator) {
    double std = nonlinearity.gain(slope) / Math.sqrt(fanIn(weight));
    return normal(weight, 0, std, generator);
  }

  /**
   * PyTorch's default for Conv2d and Linear: the weight is uniform in ±1/sqrt(fanIn), which is
   * Kaiming uniform with a leaky-ReLU gain for slope sqrt(5), and the bias is uniform in the same
   * bound. {@code bias} may be null.
   */
  public static void pytorchDefault(Tensor weight, Tensor bias, Generator generator) {
    kaimingUniform(weight, Nonlinearity.LEAKY_RELU, Math.sqrt(5), generator);
    if (bias != null) {
      double bound = 1.0 / Math.sqrt(fanIn(weight));
      uniform(bias, -bound, bound, generator);
    }
  }
}
