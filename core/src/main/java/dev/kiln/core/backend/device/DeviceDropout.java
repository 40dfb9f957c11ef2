package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.kernels.Dim3;
import java.util.Optional;

/**
 * Launches inverted dropout with the kernels of {@code dropout.cu}: element i is dropped with
 * probability p, and y = x * mask with mask[i] = 0 for a dropped element and 1 / (1 - p) for a kept
 * one.
 *
 * <p>The random numbers come from a counter-based generator: element i of a launch draws the
 * (offset + i)-th value of {@link java.util.SplittableRandom#nextLong()} seeded with {@code seed},
 * whatever thread computes it. So the mask does not depend on the launch shape, the backward pass
 * can regenerate it from (p, seed, offset) instead of storing it, and Java code can reproduce it. A
 * caller that runs several dropouts from one seed advances the offset by each one's element count,
 * so that no two draw the same numbers.
 */
public final class DeviceDropout {

  private final DeviceRuntime runtime;

  /** Creates the launcher for one device. */
  public DeviceDropout(DeviceRuntime runtime) {
    this.runtime = runtime;
  }

  /**
   * Writes y = x * mask, and the mask itself where {@code mask} is non-null.
   *
   * <p>Launches {@code kiln_dropout_forward} once, one thread per element. Pass a null mask to save
   * its memory, because {@link #backward} regenerates it.
   *
   * @throws IllegalArgumentException if p is not in [0, 1]
   */
  public void forward(
      DeviceBuffer x, DeviceBuffer y, DeviceBuffer mask, int n, double p, long seed, long offset) {
    requireProbability(p);
    requireFloats("dropout input", x, n);
    requireFloats("dropout output", y, n);
    requireOptional("dropout mask", mask, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(
        "kiln_dropout_forward",
        gridFor(n, block),
        block,
        0,
        x,
        y,
        Optional.ofNullable(mask),
        n,
        (float) p,
        seed,
        offset);
  }

  /**
   * Writes gradX = gradY * mask, with the mask of the forward launch that used the same p, seed and
   * offset.
   *
   * <p>Launches {@code kiln_dropout_backward} once, one thread per element, which regenerates each
   * mask value from the counter instead of reading a stored mask.
   */
  public void backward(
      DeviceBuffer gradY, DeviceBuffer gradX, int n, double p, long seed, long offset) {
    requireProbability(p);
    requireFloats("dropout output gradient", gradY, n);
    requireFloats("dropout input gradient", gradX, n);
    if (n == 0) {
      return;
    }
    Dim3 block = blockFor(n);
    runtime.launch(
        "kiln_dropout_backward",
        gridFor(n, block),
        block,
        0,
        gradY,
        gradX,
        n,
        (float) p,
        seed,
        offset);
  }

  private static void requireProbability(double p) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("dropout probability must be in [0, 1], got " + p);
    }
  }
}
