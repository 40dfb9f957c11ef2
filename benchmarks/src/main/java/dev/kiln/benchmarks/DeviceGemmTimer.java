package dev.kiln.benchmarks;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorBindings;
import dev.kiln.core.backend.device.CudaRuntime;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceMatmul;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Device;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * Times a square float32 matrix product on a device with kiln's two tiled kernels and with cuBLAS,
 * and prints the rate of each and the ratios to cuBLAS. It is the plain-{@code main} twin of {@link
 * DeviceGemmBenchmark}, so it runs from the GPU check bundle, which carries no JMH.
 *
 * <p>Usage: {@code DeviceGemmTimer [device] [size] [repeats]}, with defaults {@code cuda:0 4096
 * 10}. Each kernel gets {@value #WARMUP_RUNS} untimed products first, which load the module and let
 * cuBLAS pick its algorithm. A timed repeat is one product followed by {@code
 * runtime.synchronize()}, so it measures the product and not the queueing of its launch. The output
 * is one {@code key=value} pair per line:
 *
 * <pre>
 * device=cuda:0
 * size=4096
 * repeats=10
 * kiln_tiled128_median_ms=...  kiln_tiled128_gflops=...   (128 x 128 tiles)
 * kiln_tiled_median_ms=...     kiln_tiled_gflops=...      (64 x 64 tiles)
 * cublas_median_ms=...         cublas_gflops=...
 * max_abs_difference=...       (between the 128 x 128 kernel's product and cuBLAS's, as a check
 *                               that both computed C = A B)
 * kiln_over_cublas=0.612       (the 128 x 128 kernel's rate divided by cuBLAS's)
 * kiln_tiled_over_cublas=0.41  (the 64 x 64 kernel's rate divided by cuBLAS's)
 * </pre>
 *
 * <p>{@code kiln_over_cublas} is the figure that the target of at least 0.5 applies to: at 4096,
 * kiln's default product takes the 128 x 128 kernel when cuBLAS is absent.
 *
 * <p>Where cuBLAS is not in use on the device (the {@code emulated} device, a machine without the
 * library, or {@code -Dkiln.cuda.vendor=kiln}), the cuBLAS lines become {@code
 * cublas_unavailable=REASON} and both ratios {@code unmeasured}. Invalid arguments and a device
 * that cannot be opened print the reason and exit with status 2. Run with {@code --add-modules
 * jdk.incubator.vector}.
 *
 * <p>NOTE: this timer has not yet run on a real GPU, so its cuda rates are unchecked.
 */
public final class DeviceGemmTimer {

  /** Untimed products per kernel before the timed repeats. */
  static final int WARMUP_RUNS = 3;

  private DeviceGemmTimer() {}

  /**
   * The parsed command line.
   *
   * @param device the device name, such as {@code cuda:0}
   * @param size the side of the square matrices
   * @param repeats the number of timed products per kernel
   */
  record Settings(String device, int size, int repeats) {

    /**
     * Parses {@code [device] [size] [repeats]}. A missing argument takes its default.
     *
     * @throws IllegalArgumentException for more than three arguments, a size or repeat count that
     *     is not a whole number above 0, or a size whose matrices do not fit a Java array
     */
    static Settings parse(String... args) {
      if (args.length > 3) {
        throw new IllegalArgumentException(
            "expected at most 3 arguments, [device] [size] [repeats], got " + args.length);
      }
      String device = args.length > 0 ? args[0] : "cuda:0";
      int size = args.length > 1 ? TimerArguments.wholeNumber("size", args[1], 1) : 4096;
      int repeats = args.length > 2 ? TimerArguments.wholeNumber("repeats", args[2], 1) : 10;
      // upload() takes one float[] per matrix, so size * size must fit an int.
      if ((long) size * size > Integer.MAX_VALUE - 8) {
        throw new IllegalArgumentException(
            "size " + size + " is too large: a size x size float matrix must fit a Java array");
      }
      return new Settings(device, size, repeats);
    }
  }

  /** Runs the timer and exits with its status. */
  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs the timer, printing the results to {@code out} and the reason for a failure to {@code
   * err}, and returns the exit status: 0, or 2 for invalid arguments or an unusable device.
   */
  static int run(String[] args, PrintStream out, PrintStream err) {
    Settings settings;
    try {
      settings = Settings.parse(args);
    } catch (IllegalArgumentException e) {
      err.println("DeviceGemmTimer: " + e.getMessage());
      return 2;
    }
    Device device =
        TimerArguments.openDevice(
            "DeviceGemmTimer",
            settings.device(),
            "the cpu has no device GEMM kernels; give cuda:N, or emulated to try the code without"
                + " a GPU",
            err);
    if (device == null) {
      return 2;
    }

    DeviceKernels kernels = DeviceKernels.of(device);
    DeviceRuntime runtime = kernels.runtime();
    DeviceMatmul matmul = kernels.matmul();
    int size = settings.size();
    Generator generator = new Generator(7);
    DeviceBuffer a =
        runtime.upload(KeypointWorkload.gaussian(generator, size, size).toFloatArray());
    DeviceBuffer b =
        runtime.upload(KeypointWorkload.gaussian(generator, size, size).toFloatArray());
    DeviceBuffer kilnC = runtime.allocateFloats((long) size * size);
    DeviceBuffer cublasC = runtime.allocateFloats((long) size * size);
    try {
      out.println("device=" + device);
      out.println("multiprocessors=" + runtime.multiprocessors());
      out.println("size=" + size);
      out.println("repeats=" + settings.repeats());
      double flop = 2.0 * size * size * size;

      double bigRate =
          ownKernelRate(
              DeviceMatmul.Kernel.TILED_128,
              "kiln_tiled128",
              runtime,
              matmul,
              settings,
              a,
              b,
              kilnC,
              out);
      // The 64 x 64 kernel overwrites a C of its own, so the check below compares the 128 x 128
      // kernel's product.
      double tiledRate =
          ownKernelRate(
              DeviceMatmul.Kernel.TILED,
              "kiln_tiled",
              runtime,
              matmul,
              settings,
              a,
              b,
              cublasC,
              out);

      if (matmul.vendor() == null) {
        out.println("cublas_unavailable=" + cublasAbsence(runtime));
        out.println("kiln_over_cublas=" + formatRatio(bigRate, Double.NaN));
        out.println("kiln_tiled_over_cublas=" + formatRatio(tiledRate, Double.NaN));
        return 0;
      }
      double cublasMillis =
          medianMillis(
              runtime,
              settings.repeats(),
              () -> matmul.gemm(false, false, size, size, size, a, b, cublasC, false));
      double cublasRate = gflops(flop, cublasMillis);
      out.println(key("cublas_median_ms", cublasMillis));
      out.println(key("cublas_gflops", cublasRate));
      out.println(
          String.format(
              Locale.ROOT,
              "max_abs_difference=%.3g",
              maxAbsDifference(runtime, kilnC, cublasC, size)));
      out.println("kiln_over_cublas=" + formatRatio(bigRate, cublasRate));
      out.println("kiln_tiled_over_cublas=" + formatRatio(tiledRate, cublasRate));
      return 0;
    } finally {
      runtime.free(a);
      runtime.free(b);
      runtime.free(kilnC);
      runtime.free(cublasC);
    }
  }

  /**
   * Times one of kiln's kernels on C = A B, prints its {@code PREFIX_median_ms} and {@code
   * PREFIX_gflops} lines, and returns its rate in GFLOP/s.
   */
  private static double ownKernelRate(
      DeviceMatmul.Kernel kernel,
      String prefix,
      DeviceRuntime runtime,
      DeviceMatmul matmul,
      Settings settings,
      DeviceBuffer a,
      DeviceBuffer b,
      DeviceBuffer c,
      PrintStream out) {
    int size = settings.size();
    double millis =
        medianMillis(
            runtime,
            settings.repeats(),
            () -> matmul.gemm(kernel, false, false, size, size, size, a, b, c, false));
    double rate = gflops(2.0 * size * size * size, millis);
    out.println(key(prefix + "_median_ms", millis));
    out.println(key(prefix + "_gflops", rate));
    return rate;
  }

  /**
   * Runs {@code product} {@value #WARMUP_RUNS} times untimed, then {@code repeats} times, each
   * followed by a synchronize, and returns the median of the timed runs in milliseconds.
   */
  private static double medianMillis(DeviceRuntime runtime, int repeats, Runnable product) {
    for (int i = 0; i < WARMUP_RUNS; i++) {
      product.run();
    }
    runtime.synchronize();
    double[] millis = new double[repeats];
    for (int i = 0; i < repeats; i++) {
      long start = System.nanoTime();
      product.run();
      runtime.synchronize();
      millis[i] = (System.nanoTime() - start) / 1e6;
    }
    return median(millis);
  }

  /** Returns the median of {@code values}, the mean of the middle two for an even count. */
  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int middle = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  /** Returns the rate in GFLOP/s of {@code flop} operations done in {@code millis}. */
  static double gflops(double flop, double millis) {
    return flop / (millis * 1e6);
  }

  /**
   * Formats kiln's rate over cuBLAS's with three decimals, or returns {@code unmeasured} when
   * either rate is missing (NaN), zero, negative or infinite.
   */
  static String formatRatio(double kilnRate, double cublasRate) {
    boolean measured =
        Double.isFinite(kilnRate) && Double.isFinite(cublasRate) && kilnRate > 0 && cublasRate > 0;
    if (!measured) {
      return "unmeasured";
    }
    return String.format(Locale.ROOT, "%.3f", kilnRate / cublasRate);
  }

  private static String key(String name, double value) {
    return String.format(Locale.ROOT, "%s=%.3f", name, value);
  }

  /** Returns why the device's products do not go to cuBLAS. */
  private static String cublasAbsence(DeviceRuntime runtime) {
    if (runtime instanceof CudaRuntime cuda) {
      return VendorBindings.of(cuda.context()).blasSelection().reason();
    }
    return "the " + runtime.name() + " device has no cuBLAS; only kiln's own kernels run there";
  }

  /** Returns the largest absolute difference between two size x size matrices on the device. */
  private static double maxAbsDifference(
      DeviceRuntime runtime, DeviceBuffer first, DeviceBuffer second, int size) {
    float[] x = new float[size * size];
    float[] y = new float[size * size];
    runtime.copyToHost(first, x);
    runtime.copyToHost(second, y);
    double max = 0;
    for (int i = 0; i < x.length; i++) {
      max = Math.max(max, Math.abs((double) x[i] - y[i]));
    }
    return max;
  }
}
