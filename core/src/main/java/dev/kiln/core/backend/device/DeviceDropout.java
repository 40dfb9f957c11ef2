package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.LaunchShapes.blockFor;
import static dev.kiln.core.backend.device.LaunchShapes.gridFor;
import static dev.kiln.core.backend.device.LaunchShapes.requireFloats;
import static dev.kiln.core.backend.device.LaunchShapes.requireOptional;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.kernels.Dim3;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

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
 *
 * <p>Where cuDNN is loaded, {@link #cudnnForward} and {@link #cudnnBackward} run cuDNN's dropout
 * instead. cuDNN keeps its random state on the device: a descriptor per probability contains one
 * generator state per GPU thread, which {@code cudnnSetDropoutDescriptor} initializes from a seed
 * in a slow step, and every forward call advances. So this launcher seeds the state of each
 * probability once, with the seed of its first call, and later calls continue that state's
 * sequence. cuDNN also writes each mask to a reserve buffer, which the backward pass reads instead
 * of recomputing it.
 */
public final class DeviceDropout {

  private final DeviceRuntime runtime;
  private final VendorDnn dnn;

  /** The seed of each probability's cuDNN random state: the seed of its first call. */
  private final Map<Float, Long> cudnnSeeds = new ConcurrentHashMap<>();

  /** cuDNN's reserve size in bytes per element count, asked once per count. */
  private final Map<Integer, Long> reserveBytes = new ConcurrentHashMap<>();

  /** Creates the launcher for one device, which runs kiln's own kernels. */
  public DeviceDropout(DeviceRuntime runtime) {
    this(runtime, null);
  }

  /**
   * Creates the launcher for one device whose {@link #cudnnForward} and {@link #cudnnBackward} call
   * {@code dnn}, which may be null where cuDNN is absent.
   */
  public DeviceDropout(DeviceRuntime runtime, VendorDnn dnn) {
    this.runtime = runtime;
    this.dnn = dnn;
  }

  /** Returns whether this launcher has cuDNN, so that the {@code cudnn} methods may be called. */
  public boolean hasCudnn() {
    return dnn != null;
  }

  /**
   * Returns whether cuDNN takes dropout with probability p: where this launcher has cuDNN and p,
   * rounded to the float that cuDNN receives, is below 1. A p just below 1 rounds to 1.0f, for
   * which cuDNN's scale 1 / (1 - p) would be infinite, so kiln's kernel takes it.
   */
  public boolean cudnnTakes(double p) {
    return dnn != null && inCudnnRange(p);
  }

  /**
   * Writes y = x * mask, and the mask itself where {@code mask} is non-null.
   *
   * <p>Launches {@code kiln_dropout_forward} once, with a thread per element up to {@code
   * LaunchShapes.MAX_GRID_BLOCKS} blocks, past which each thread takes several. Pass a null mask to
   * save its memory, because {@link #backward} regenerates it.
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
   * <p>Launches {@code kiln_dropout_backward} once, on the grid of {@link #forward}, and
   * regenerates each mask value from the counter instead of reading a stored mask.
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

  /**
   * Returns the size in floats of the reserve buffer that {@link #cudnnForward} needs for n
   * elements: cuDNN's reserve size in bytes, rounded up to whole floats, and at least one.
   */
  public int cudnnReserveFloats(int n) {
    if (n == 0) {
      // cuDNN's tensor descriptors take positive sizes only, and zero elements need no mask.
      return 1;
    }
    long bytes = reserveBytes(n);
    return (int) Math.max(1, (bytes + Float.BYTES - 1) / Float.BYTES);
  }

  /** Returns cuDNN's reserve size in bytes for n elements, asking cuDNN once per n. */
  private long reserveBytes(int n) {
    return reserveBytes.computeIfAbsent(n, count -> cudnn().dropoutReserveBytes(count));
  }

  /**
   * Writes y = x * mask with cuDNN's dropout, and the mask to {@code reserve} for {@link
   * #cudnnBackward}.
   *
   * @param reserve a buffer of at least {@link #cudnnReserveFloats}(n) floats
   * @param seed the seed of this probability's random state, used only by the first call with p.
   *     Later calls continue the state that the first one seeded.
   * @throws IllegalArgumentException unless {@link #cudnnTakes}(p), because cuDNN scales the kept
   *     elements by 1 / (1 - p), which p = 1 would make infinite
   */
  public void cudnnForward(
      DeviceBuffer x, DeviceBuffer y, DeviceBuffer reserve, int n, double p, long seed) {
    requireCudnnProbability(p);
    requireFloats("dropout input", x, n);
    requireFloats("dropout output", y, n);
    if (n == 0) {
      return;
    }
    long reserveBytes = requireReserve(reserve, n);
    float probability = (float) p;
    long stateSeed = cudnnSeeds.computeIfAbsent(probability, first -> seed);
    cudnn()
        .dropoutForward(
            probability, stateSeed, n, x.address(), y.address(), reserve.address(), reserveBytes);
    DeviceRuntime.keepReachable(x, y, reserve);
  }

  /**
   * Writes gradX = gradY * mask with cuDNN's dropout, reading the mask that {@link #cudnnForward}
   * wrote to {@code reserve} with the same p.
   */
  public void cudnnBackward(
      DeviceBuffer gradY, DeviceBuffer gradX, DeviceBuffer reserve, int n, double p) {
    requireCudnnProbability(p);
    requireFloats("dropout output gradient", gradY, n);
    requireFloats("dropout input gradient", gradX, n);
    if (n == 0) {
      return;
    }
    long reserveBytes = requireReserve(reserve, n);
    float probability = (float) p;
    Long stateSeed = cudnnSeeds.get(probability);
    if (stateSeed == null) {
      throw new IllegalStateException(
          "cuDNN dropout backward with p=" + p + " before any forward pass with that probability");
    }
    cudnn()
        .dropoutBackward(
            probability,
            stateSeed,
            n,
            gradY.address(),
            gradX.address(),
            reserve.address(),
            reserveBytes);
    DeviceRuntime.keepReachable(gradY, gradX, reserve);
  }

  /**
   * Checks that the reserve buffer has room for cuDNN's reserve for n elements, and returns its
   * bytes.
   */
  private long requireReserve(DeviceBuffer reserve, int n) {
    long bytes = reserveBytes(n);
    if (reserve == null || reserve.bytes() < bytes) {
      throw new IllegalArgumentException(
          "dropout reserve: cuDNN needs "
              + bytes
              + " bytes for "
              + n
              + " elements, got "
              + (reserve == null ? "no buffer" : reserve.bytes() + " bytes")
              + "; allocate cudnnReserveFloats(n) floats");
    }
    return bytes;
  }

  private VendorDnn cudnn() {
    if (dnn == null) {
      throw new IllegalStateException(
          "this device's dropout launcher has no cuDNN: call hasCudnn() first, or use the kiln"
              + " kernels");
    }
    return dnn;
  }

  /** Returns whether p, as the float that cuDNN receives, is in [0, 1). */
  private static boolean inCudnnRange(double p) {
    return p >= 0 && (float) p < 1f;
  }

  private static void requireCudnnProbability(double p) {
    if (!inCudnnRange(p)) {
      throw new IllegalArgumentException(
          "cuDNN dropout probability must be in [0, 1) as a float, got "
              + p
              + "; use forward() for p = 1 and values that round to it");
    }
  }

  private static void requireProbability(double p) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("dropout probability must be in [0, 1], got " + p);
    }
  }
}
