package dev.kiln.core.backend.device;

import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.tensor.Storage;
import dev.kiln.kernels.KernelImage;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.InvocationInterceptor;
import org.junit.jupiter.api.extension.ReflectiveInvocationContext;

/**
 * The devices that the device tests run on, and the buffers, inputs and comparisons they share.
 *
 * <p>{@link #devices()} is the {@code @MethodSource} of every parameterized device test: {@code
 * emulated} and {@code cuda:0}. A test class that uses it carries
 * {@code @ExtendWith(SkipUnusableCuda.class)}, which skips each cuda:0 case with {@link
 * CudaAvailability}'s reason where no GPU is usable. A run on a machine without a GPU then reports
 * those cases as skipped, with the reason, instead of leaving them out and passing as if the GPU
 * had been tested.
 *
 * <h2>Tolerances</h2>
 *
 * <p>Every test runs the CPU kernel in float64 on the same float32 inputs, and compares the
 * device's float32 result with it. The difference then measures only the device's rounding:
 *
 * <ul>
 *   <li>{@link #ROUNDED}: one float32 operation rounds to within 2^-24 (6e-8) of the exact value.
 *       CUDA's single-precision expf, logf, powf and tanhf err by a few units in the last place
 *       (see the table of single-precision function errors in the CUDA C++ Programming Guide's
 *       mathematical-functions appendix), and the emulator calls glibc's, which are closer still. A
 *       few chained operations stay well under 2e-6 relative.
 *   <li>{@link #SUMMED}: a float32 sum of k terms can drift by about k * 6e-8 times the terms'
 *       magnitude. The tests sum at most a few hundred terms of magnitude up to about 1, so 2e-5
 *       covers it with room, while a wrong index or a dropped term is off by far more.
 *   <li>{@link #CANCELLED}: where a result is the difference of operands of magnitude up to about
 *       1, as an optimizer step subtracts an update from a parameter, the operands' rounding (6e-8
 *       each) stays in the result however small it is, so the tolerance has an absolute part of a
 *       few such units.
 *   <li>On a GPU, nvcc contracts a * b + c into fused multiply-adds, which round once where the
 *       emulator rounds twice. That changes results by about one unit in the last place per
 *       operation, which all three tolerances already allow for. This is why the device results are
 *       compared with float64 and never with each other bit for bit.
 * </ul>
 *
 * Each tolerance is applied as |actual - expected| &lt;= relative * |expected| + absolute.
 */
public final class DeviceTestSupport {

  /** Seed of the random inputs, so that a failure can be reproduced. */
  public static final long SEED = 20_261_205L;

  /** Tolerance of one or a few rounded float32 operations (see the class comment). */
  public static final Tolerance ROUNDED = new Tolerance(2e-6, 1e-7);

  /** Tolerance of results that cancel operands of magnitude about 1 (see the class comment). */
  public static final Tolerance CANCELLED = new Tolerance(2e-6, 5e-7);

  /** Tolerance of sums of up to a few hundred float32 terms (see the class comment). */
  public static final Tolerance SUMMED = new Tolerance(2e-5, 2e-5);

  /** Relative and absolute parts of a tolerance. */
  public record Tolerance(double relative, double absolute) {}

  /** Name of the GPU device that the device tests run on where it is usable. */
  private static final String CUDA = "cuda:0";

  private static final Map<String, DeviceRuntime> OPEN = new LinkedHashMap<>();
  private static String cudaSkipReason;

  private DeviceTestSupport() {}

  /** Returns the devices to test on, named for the test report. */
  public static Stream<Named<String>> devices() {
    return Stream.of(Named.of("emulated", "emulated"), Named.of(CUDA, CUDA));
  }

  /**
   * Returns why cuda:0 cannot be used, or "" where it can. The device tests need both a usable GPU
   * and kiln's kernels compiled for it, which a build with {@code -Dkiln.fatbin.skip=true} leaves
   * out. The check runs once per test run, and its reason is printed once, so the test log gives
   * the cause of every cuda:0 skip.
   */
  static synchronized String cudaSkipReason() {
    if (cudaSkipReason == null) {
      CudaAvailability cuda = CudaAvailability.check(0);
      if (!cuda.usable()) {
        cudaSkipReason = cuda.message();
      } else if (KernelImage.fatbin().isEmpty()) {
        cudaSkipReason = "cuda:0 is usable, but " + KernelImage.missingReason();
      } else {
        cudaSkipReason = "";
      }
      if (!cudaSkipReason.isEmpty()) {
        System.out.println("device tests skip cuda:0: " + cudaSkipReason);
      }
    }
    return cudaSkipReason;
  }

  /**
   * Skips a parameterized test case whose arguments name cuda:0 where that device is not usable. An
   * argument names it when its string form is "cuda:0", which covers both the names that {@link
   * #devices()} returns and a {@code Device} parsed from them.
   */
  public static final class SkipUnusableCuda implements InvocationInterceptor {
    @Override
    public void interceptTestTemplateMethod(
        Invocation<Void> invocation,
        ReflectiveInvocationContext<Method> context,
        ExtensionContext extension)
        throws Throwable {
      boolean namesCuda =
          context.getArguments().stream()
              .anyMatch(argument -> CUDA.equals(String.valueOf(argument)));
      String reason = namesCuda ? cudaSkipReason() : "";
      if (!reason.isEmpty()) {
        // JUnit requires an interceptor to either proceed with or skip the invocation it was given.
        invocation.skip();
        Assumptions.abort("device test skipped: " + reason);
      }
      invocation.proceed();
    }
  }

  /** Returns the runtime of a device name from {@link #devices()}, opened once per test run. */
  static synchronized DeviceRuntime runtime(String name) {
    return OPEN.computeIfAbsent(
        name, key -> key.equals("emulated") ? EmulatedRuntime.create() : CudaRuntime.open(0));
  }

  /** Returns {@code count} floats drawn uniformly from [-1, 1). */
  public static float[] randomFloats(Random random, int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = random.nextFloat() * 2 - 1;
    }
    return values;
  }

  /** Returns float64 storage holding the same values as {@code values}, for the CPU reference. */
  static Storage f64(float[] values) {
    double[] copy = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      copy[i] = values[i];
    }
    return Storage.wrap(copy);
  }

  /** Returns empty float64 storage of {@code size} elements. */
  static Storage f64(int size) {
    return Storage.wrap(new double[size]);
  }

  /**
   * Fails, naming the device, the quantity and the first index out of tolerance, unless every
   * element of {@code actual} is within tolerance of {@code expected}. NaN matches only NaN.
   */
  public static void assertClose(
      String device, String quantity, double[] expected, float[] actual, Tolerance tolerance) {
    if (expected.length != actual.length) {
      fail(
          String.format(
              "%s on %s: expected %d values, got %d",
              quantity, device, expected.length, actual.length));
    }
    for (int i = 0; i < expected.length; i++) {
      double e = expected[i];
      double a = actual[i];
      boolean bothNaN = Double.isNaN(e) && Double.isNaN(a);
      double allowed = tolerance.relative() * Math.abs(e) + tolerance.absolute();
      if (!bothNaN && !(Math.abs(a - e) <= allowed || e == a)) {
        fail(
            String.format(
                "%s on %s: element %d of %d is %s, but the float64 reference gives %s (allowed"
                    + " difference %.3g, actual %.3g)",
                quantity, device, i, expected.length, a, e, allowed, Math.abs(a - e)));
      }
    }
  }

  /** As {@link #assertClose(String, String, double[], float[], Tolerance)} for a storage. */
  static void assertClose(
      String device, String quantity, Storage expected, float[] actual, Tolerance tolerance) {
    double[] values = new double[expected.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = expected.get(i);
    }
    assertClose(device, quantity, values, actual, tolerance);
  }

  /**
   * The buffers of one test on one device: every buffer made here is freed by {@link #close()}, so
   * a test cannot leak device memory into the next.
   */
  static final class Buffers implements AutoCloseable {
    private final DeviceRuntime runtime;
    private final List<DeviceBuffer> owned = new ArrayList<>();

    Buffers(DeviceRuntime runtime) {
      this.runtime = runtime;
    }

    /** Returns a new buffer holding {@code values}. */
    DeviceBuffer of(float[] values) {
      return keep(runtime.upload(values));
    }

    /** Returns a new buffer holding {@code values}. */
    DeviceBuffer of(int[] values) {
      return keep(runtime.upload(values));
    }

    /**
     * Returns a new buffer of {@code count} floats filled with NaN, so that an element the kernel
     * forgot to write fails the comparison.
     */
    DeviceBuffer filled(int count) {
      float[] poison = new float[count];
      Arrays.fill(poison, Float.NaN);
      return of(poison);
    }

    /** Copies {@code count} floats of a buffer back to the host. */
    float[] read(DeviceBuffer buffer, int count) {
      float[] values = new float[count];
      runtime.copyToHost(buffer, 0, values, 0, count);
      return values;
    }

    /** Copies {@code count} ints of a buffer back to the host. */
    int[] readInts(DeviceBuffer buffer, int count) {
      int[] values = new int[count];
      runtime.copyToHost(buffer, values);
      return values;
    }

    private DeviceBuffer keep(DeviceBuffer buffer) {
      owned.add(buffer);
      return buffer;
    }

    @Override
    public void close() {
      runtime.synchronize();
      for (DeviceBuffer buffer : owned) {
        runtime.free(buffer);
      }
    }
  }
}
