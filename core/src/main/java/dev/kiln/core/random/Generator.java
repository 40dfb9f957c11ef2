package dev.kiln.core.random;

/**
 * A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64), so that a run with a
 * given seed draws the same numbers on every JVM and every machine.
 *
 * <p>The state is four longs plus the spare Gaussian sample that {@link #nextGaussian()} caches.
 * {@link #state()} and {@link #setState(long[])} save and restore all of it, as six longs, in
 * checkpoints. Not thread-safe: give each thread its own generator, for example from {@link
 * #split()}.
 */
public final class Generator {
  private static Generator global = new Generator(0);

  private long s0;
  private long s1;
  private long s2;
  private long s3;
  private double spareGaussian;
  private boolean hasSpareGaussian;

  public Generator(long seed) {
    long x = seed;
    x += 0x9E3779B97F4A7C15L;
    s0 = mix(x);
    x += 0x9E3779B97F4A7C15L;
    s1 = mix(x);
    x += 0x9E3779B97F4A7C15L;
    s2 = mix(x);
    x += 0x9E3779B97F4A7C15L;
    s3 = mix(x);
  }

  /**
   * Returns the process-wide generator that layers use for initialization and dropout unless they
   * are given one. Like PyTorch's default generator, it is meant for code that builds and trains
   * models on one thread; threads that draw at the same time need their own generators.
   */
  public static synchronized Generator global() {
    return global;
  }

  /** Reseeds the process-wide generator, as {@code torch.manual_seed} does. */
  public static synchronized void manualSeed(long seed) {
    global = new Generator(seed);
  }

  /** SplitMix64's output function; it turns consecutive seeds into well-spread states. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** Returns 64 random bits. */
  public long nextLong() {
    long result = Long.rotateLeft(s1 * 5, 7) * 9;
    long t = s1 << 17;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = Long.rotateLeft(s3, 45);
    return result;
  }

  /** Returns a double uniform in [0, 1), with 53 random bits. */
  public double nextDouble() {
    return (nextLong() >>> 11) * 0x1.0p-53;
  }

  /** Returns an int uniform in [0, bound). */
  public int nextInt(int bound) {
    if (bound <= 0) {
      throw new IllegalArgumentException("bound must be positive, got " + bound);
    }
    // Take 31 bits and reject the top partial range, so every residue is equally likely.
    while (true) {
      int bits = (int) (nextLong() >>> 33);
      int value = bits % bound;
      if (bits - value + (bound - 1) >= 0) {
        return value;
      }
    }
  }

  /** Returns a standard normal sample, from the Box-Muller transform with a cached spare. */
  public double nextGaussian() {
    if (hasSpareGaussian) {
      hasSpareGaussian = false;
      return spareGaussian;
    }
    double u1 = 1.0 - nextDouble(); // in (0, 1], so the log is finite
    double u2 = nextDouble();
    double radius = Math.sqrt(-2.0 * Math.log(u1));
    spareGaussian = radius * Math.sin(2.0 * Math.PI * u2);
    hasSpareGaussian = true;
    return radius * Math.cos(2.0 * Math.PI * u2);
  }

  /** Returns a new generator seeded from this one; both streams then go their own way. */
  public Generator split() {
    return new Generator(nextLong());
  }

  /** Returns the state, for checkpoints. */
  public long[] state() {
    return new long[] {
      s0, s1, s2, s3, hasSpareGaussian ? 1 : 0, Double.doubleToRawLongBits(spareGaussian)
    };
  }

  /** Restores a state returned by {@link #state()}. */
  public void setState(long[] state) {
    if (state.length != 6) {
      throw new IllegalArgumentException(
          "generator state must have 6 numbers, got " + state.length);
    }
    s0 = state[0];
    s1 = state[1];
    s2 = state[2];
    s3 = state[3];
    hasSpareGaussian = state[4] != 0;
    spareGaussian = Double.longBitsToDouble(state[5]);
  }
}
