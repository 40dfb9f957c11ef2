package dev.kiln.benchmarks;

import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.backend.device.DeviceWork;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.optim.Adam;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.stream.Collectors;

/**
 * Times whole training steps (zero the gradients, forward, MSE loss, backward, Adam step) of a
 * keypoint preset on random float32 images, and prints the median step time and images per second.
 *
 * <p>Usage: {@code TrainingStepTimer [--device NAME] [--warmup-seconds S] [preset] [batch]
 * [warmupSteps] [timedSteps]}, with defaults {@code cpu 2 default 32 10 30}. The warm-up runs at
 * least {@code warmupSteps} steps and more until {@code S} seconds have passed, the rule of {@code
 * Compare} and {@code pytorch_bench.py}, because the JIT compiler needs that time whatever a step
 * costs. The median is the mean of the two middle step times for an even count, as in the
 * comparison table. The result line gives it rounded as {@code median=} for reading, and in full
 * precision as {@code median_ms=}. It ends with {@code step_ms=}, every timed step's milliseconds
 * in the order the steps ran, comma-separated and in full precision, from which gpu-check.sh's
 * comparison with PyTorch takes the median and the min-max range. The device is {@code cpu}, {@code
 * cuda}, {@code cuda:N} or {@code emulated}, and the result line names it. {@code emulated} runs
 * kiln's CUDA kernels compiled for the CPU, one OS thread per CUDA thread, so it checks the device
 * path but is far slower than {@code cpu}, so give it a small batch and few steps. A device that
 * cannot be used is reported with the reason and exit status 2. The thread count of the CPU backend
 * comes from {@code -Dkiln.threads}. Run with {@code --add-modules jdk.incubator.vector}.
 *
 * <p>The model is initialized on the CPU and then moved, so every device starts from the same
 * weights. The images are Gaussian noise and the targets uniform in [-1, 1], so the timings do not
 * depend on a data set. Both are made once on the CPU and moved to the device before the first
 * step, so the timings include no host-to-device copy. Each step ends with {@code item()} on the
 * loss, which waits for the device's queued kernels, so a step's time on a GPU is the time its work
 * took.
 *
 * <p>On {@code cuda} and {@code emulated}, three lines follow the result line with the device work
 * of the timed steps, per step (see {@link DeviceWork}): one of {@code key=value} counts of
 * launches, cuBLAS and cuDNN calls, copies each way with their bytes, synchronizations and
 * allocations, raw ones included, then the launches of each kernel and the calls of each library
 * function. None of them starts with {@code device=}, which keeps the result line the last one that
 * gpu-check.sh reads as a result.
 *
 * <p>NOTE: this timer has not yet run on a real GPU, so its cuda timings are unchecked.
 */
public final class TrainingStepTimer {

  private TrainingStepTimer() {}

  /** Runs the timing loop and prints one summary line. */
  public static void main(String[] arguments) {
    String deviceName = "cpu";
    double warmupSeconds = 2;
    String[] args = arguments;
    while (args.length >= 2 && (args[0].equals("--device") || args[0].equals("--warmup-seconds"))) {
      if (args[0].equals("--device")) {
        deviceName = args[1];
      } else {
        warmupSeconds = seconds(args[1]);
      }
      args = Arrays.copyOfRange(args, 2, args.length);
    }
    Device device;
    try {
      device = Device.parse(deviceName);
    } catch (IllegalArgumentException e) {
      System.err.println("TrainingStepTimer: " + e.getMessage());
      System.exit(2);
      return;
    }
    String preset = args.length > 0 ? args[0] : "default";
    int batch = args.length > 1 ? Integer.parseInt(args[1]) : 32;
    int warmupSteps = args.length > 2 ? Integer.parseInt(args[2]) : 10;
    int timedSteps = args.length > 3 ? Integer.parseInt(args[3]) : 30;

    Generator generator = new Generator(1);
    Sequential model = ModelPresets.byName(preset).build(DType.FLOAT32, generator);
    model.train();
    try {
      model.to(device);
    } catch (IllegalStateException e) {
      System.err.println(
          "TrainingStepTimer: cannot time training on " + device + ": " + e.getMessage());
      System.exit(2);
      return;
    }
    // Built after the move, so that Adam creates its state on the device.
    Adam optimizer = new Adam(model.parameters()).learningRate(1e-3);
    // MSE, as in pytorch_bench.py and the JMH TrainingBenchmark, so that the steps compare.
    Loss loss = new MSELoss();

    int[] inputShape = ModelPresets.byName(preset).inputShape();
    int imageSize = Arrays.stream(inputShape).reduce(1, (a, b) -> a * b);
    float[] images = new float[batch * imageSize];
    for (int i = 0; i < images.length; i++) {
      images[i] = (float) generator.nextGaussian();
    }
    float[] targets = new float[batch * 136];
    for (int i = 0; i < targets.length; i++) {
      targets[i] = (float) (2 * generator.nextDouble() - 1);
    }
    int[] batchShape = new int[inputShape.length + 1];
    batchShape[0] = batch;
    System.arraycopy(inputShape, 0, batchShape, 1, inputShape.length);
    Tensor input = Tensor.of(images, batchShape).to(device);
    Tensor target = Tensor.of(targets, batch, 136).to(device);

    double[] lastLoss = new double[1];
    // The device's counters are read when the timed steps start and after they end, outside the
    // clock, so that the work lines cover exactly the timed steps.
    DeviceRuntime runtime = device.isCpu() ? null : DeviceKernels.of(device).runtime();
    DeviceWork[] atTimedStart = new DeviceWork[1];
    Timing timing =
        time(
            () -> lastLoss[0] = KeypointWorkload.trainStep(model, optimizer, loss, input, target),
            warmupSteps,
            warmupSeconds,
            timedSteps,
            System::nanoTime,
            () -> atTimedStart[0] = runtime == null ? null : runtime.work());
    String where = "device=" + device + " preset=" + preset + " batch=" + batch;
    where += " threads=" + System.getProperty("kiln.threads", "default");
    System.out.println(resultLine(where, batch, timing, lastLoss[0]));
    if (runtime != null) {
      DeviceWork work = runtime.work().minus(atTimedStart[0]);
      workLines(device, work, timedSteps).forEach(System.out::println);
    }
  }

  /**
   * The outcome of {@link #time}: the warm-up steps run and their seconds, and the timed steps'
   * milliseconds in the order the steps ran.
   */
  record Timing(int warmupSteps, double warmupSeconds, double[] stepMillis) {}

  /**
   * Runs {@code step} at least {@code warmupSteps} times and until {@code warmupSeconds} have
   * passed, then times {@code timedSteps} more, one at a time.
   */
  static Timing time(Runnable step, int warmupSteps, double warmupSeconds, int timedSteps) {
    return time(step, warmupSteps, warmupSeconds, timedSteps, System::nanoTime, () -> {});
  }

  /**
   * Does the work of {@link #time(Runnable, int, double, int)}, reading the timed steps' start and
   * end from {@code clock} in nanoseconds, and running {@code beforeTimed} once between the warm-up
   * and the first timed step, off the clock. The warm-up's time limit always follows {@link
   * System#nanoTime}.
   */
  static Timing time(
      Runnable step,
      int warmupSteps,
      double warmupSeconds,
      int timedSteps,
      LongSupplier clock,
      Runnable beforeTimed) {
    long warmupStart = System.nanoTime();
    int warmedUp = Compare.runAtLeast(step, warmupSteps, warmupSeconds);
    double warmupElapsed = (System.nanoTime() - warmupStart) / 1e9;
    beforeTimed.run();
    double[] millis = new double[timedSteps];
    for (int i = 0; i < timedSteps; i++) {
      long start = clock.getAsLong();
      step.run();
      millis[i] = (clock.getAsLong() - start) / 1e6;
    }
    return new Timing(warmedUp, warmupElapsed, millis);
  }

  /**
   * Returns the result line: {@code where}, then the median and min step time rounded for reading,
   * images/s, the loss, the warm-up, {@code median_ms=} in full precision, which gpu-check.sh shows
   * in its reports, and {@code step_ms=}, every timed step's time in full precision, from which
   * {@code GpuReport compare-steps} decides the comparison with PyTorch.
   */
  static String resultLine(String where, int batch, Timing timing, double loss) {
    double[] millis = timing.stepMillis();
    double median = ComparisonTable.median(millis);
    double min = Arrays.stream(millis).min().orElseThrow();
    return String.format(
        Locale.ROOT,
        "%s median=%.1f ms min=%.1f ms images/s=%.1f loss=%.6f warmup_steps=%d"
            + " warmup_s=%.1f timed_steps=%d median_ms=%s step_ms=%s",
        where,
        median,
        min,
        batch * 1000.0 / median,
        loss,
        timing.warmupSteps(),
        timing.warmupSeconds(),
        millis.length,
        median,
        joinMillis(millis));
  }

  /**
   * Returns the three lines that follow the result line on a device, which the class comment
   * describes, with {@code work} divided by the {@code steps} it covers.
   */
  static List<String> workLines(Device device, DeviceWork work, int steps) {
    return List.of(
        "work per step on "
            + device
            + " over "
            + steps
            + " timed steps: "
            + work.summaryPerStep(steps),
        "launches per step by kernel: " + countsPerStep(work.launchesByKernel(), steps),
        "library calls per step by function: "
            + countsPerStep(work.libraryCallsByFunction(), steps));
  }

  /** Joins {@code name=count} pairs, counts per step, the largest first, or returns "none". */
  private static String countsPerStep(Map<String, Long> counts, int steps) {
    if (counts.isEmpty()) {
      return "none";
    }
    return counts.entrySet().stream()
        .sorted(
            Map.Entry.<String, Long>comparingByValue()
                .reversed()
                .thenComparing(Map.Entry.comparingByKey()))
        .map(entry -> entry.getKey() + "=" + DeviceWork.perStep(entry.getValue(), steps))
        .collect(Collectors.joining(" "));
  }

  /**
   * Joins milliseconds with commas, each as {@link Double#toString} writes it, which parses back to
   * the same double, so that no precision is lost. Values below 0.001 come out as, for example,
   * {@code 1.0E-4}.
   */
  static String joinMillis(double[] millis) {
    return Arrays.stream(millis).mapToObj(Double::toString).collect(Collectors.joining(","));
  }

  private static double seconds(String text) {
    if (!text.matches("[0-9]+([.][0-9]+)?")) {
      System.err.println(
          "TrainingStepTimer: invalid --warmup-seconds '"
              + text
              + "': give seconds, 0 or more, written like 3 or 0.5");
      System.exit(2);
    }
    return Double.parseDouble(text);
  }
}
