package dev.kiln.benchmarks;

import dev.kiln.core.backend.cuda.libraries.VendorBindings;
import dev.kiln.core.backend.cuda.libraries.VendorSelection;
import dev.kiln.core.backend.device.CudaRuntime;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import dev.kiln.nn.Module;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Times forward plus backward of each conv, pooling, batch-norm, dropout and linear layer of one
 * keypoint preset on a device, at the input shape that the layer receives in that model. These are
 * the layers that go to cuDNN (conv, pooling, batch norm, dropout) and cuBLAS (linear) where those
 * libraries load. Layers run in training mode, so dropout draws a mask on every pass.
 *
 * <p>The tensor ops always use the kernels that {@link DeviceKernels#of(Device)} registered for the
 * device, so one process cannot time both paths. The comparison is therefore two runs of this
 * timer: one with the default {@code -Dkiln.cuda.vendor=auto} and one with {@code
 * -Dkiln.cuda.vendor=kiln}, which forces kiln's own kernels. The GPU check runs both and joins the
 * lines by layer name.
 *
 * <p>Usage: {@code DeviceLayerTimer [--device NAME] [preset] [batch] [warmup] [repeats]}, with
 * defaults {@code cuda:0 lenet-20m 64 3 10}. Each timed repeat clears the gradients, runs the
 * forward pass and then the backward pass from an all-ones output gradient, and waits for the
 * device. The input requires a gradient, so a conv or linear layer computes both the input and the
 * weight gradient, as in a training step. The output is one line per layer:
 *
 * <pre>
 * layer=lenet-20m/0-conv provider=direct batch=64 median_ms=0.412 min_ms=0.398
 * </pre>
 *
 * <p>{@code provider} is the path that {@link VendorSelection} chose for the layer's library:
 * {@code jcuda}, {@code direct} or {@code kiln}. Invalid arguments and an unusable device print the
 * reason and exit with status 2. Run with {@code --add-modules jdk.incubator.vector}.
 *
 * <p>NOTE: this timer has not yet run on a real GPU, so its cuda timings are unchecked.
 */
public final class DeviceLayerTimer {

  /** The layer kinds that a vendor library can serve. */
  private static final Set<String> VENDOR_KINDS =
      Set.of("conv", "maxpool", "avgpool", "batchnorm", "dropout", "linear");

  private DeviceLayerTimer() {}

  /**
   * The parsed command line.
   *
   * @param device the device name
   * @param preset the keypoint preset whose layers are timed
   * @param batch the batch size
   * @param warmup untimed forward plus backward passes per layer
   * @param repeats timed forward plus backward passes per layer
   */
  record Settings(String device, String preset, int batch, int warmup, int repeats) {

    /**
     * Parses {@code [--device NAME] [preset] [batch] [warmup] [repeats]}.
     *
     * @throws IllegalArgumentException for an unknown preset, a number that is not a whole number
     *     above 0 (warm-up may be 0), or too many arguments
     */
    static Settings parse(String... arguments) {
      String device = "cuda:0";
      List<String> args = new ArrayList<>(List.of(arguments));
      if (!args.isEmpty() && args.get(0).equals("--device")) {
        if (args.size() < 2) {
          throw new IllegalArgumentException("--device needs a device name, such as cuda:0");
        }
        device = args.get(1);
        args = args.subList(2, args.size());
      }
      if (args.size() > 4) {
        throw new IllegalArgumentException(
            "expected at most [--device NAME] [preset] [batch] [warmup] [repeats], got "
                + String.join(" ", arguments));
      }
      String preset = args.size() > 0 ? args.get(0) : "lenet-20m";
      if (!ModelPresets.names().contains(preset)) {
        throw new IllegalArgumentException(
            "unknown preset '"
                + preset
                + "': use one of "
                + String.join(", ", ModelPresets.names()));
      }
      int batch = args.size() > 1 ? TimerArguments.wholeNumber("batch", args.get(1), 1) : 64;
      int warmup = args.size() > 2 ? TimerArguments.wholeNumber("warmup", args.get(2), 0) : 3;
      int repeats = args.size() > 3 ? TimerArguments.wholeNumber("repeats", args.get(3), 1) : 10;
      return new Settings(device, preset, batch, warmup, repeats);
    }
  }

  /** Runs the timer and exits with its status. */
  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Times every vendor-capable layer of the preset, printing one line each to {@code out} and the
   * reason for a failure to {@code err}, and returns the exit status: 0, or 2 for invalid arguments
   * or an unusable device.
   */
  static int run(String[] args, PrintStream out, PrintStream err) {
    Settings settings;
    try {
      settings = Settings.parse(args);
    } catch (IllegalArgumentException e) {
      err.println("DeviceLayerTimer: " + e.getMessage());
      return 2;
    }
    Device device =
        TimerArguments.openDevice(
            "DeviceLayerTimer",
            settings.device(),
            "the cpu has no vendor libraries to compare; give cuda:N, or emulated to try the code"
                + " without a GPU",
            err);
    if (device == null) {
      return 2;
    }
    for (LayerCase layerCase : cases(settings.preset())) {
      double[] millis = time(layerCase, device, settings);
      out.printf(
          Locale.ROOT,
          "layer=%s provider=%s batch=%d median_ms=%.3f min_ms=%.3f%n",
          layerCase.name(),
          provider(device, layerCase.kind()),
          settings.batch(),
          DeviceGemmTimer.median(millis),
          Arrays.stream(millis).min().orElseThrow());
    }
    return 0;
  }

  /** Returns the layers of {@code preset} that a vendor library can serve, in model order. */
  static List<LayerCase> cases(String preset) {
    ModelSpec spec = ModelPresets.byName(preset);
    List<LayerCase> cases = new ArrayList<>();
    for (int i = 0; i < spec.layers().size(); i++) {
      String kind = LayerCase.keyword(spec.layers().get(i));
      if (VENDOR_KINDS.contains(kind)) {
        cases.add(LayerCase.parse(preset + "/" + i + "-" + kind));
      }
    }
    return cases;
  }

  /** Returns the milliseconds of each timed forward plus backward pass of one layer. */
  private static double[] time(LayerCase layerCase, Device device, Settings settings) {
    Generator generator = new Generator(42);
    Module module = layerCase.build(generator).to(device);
    int[] sample = layerCase.inputShape();
    int[] shape = new int[sample.length + 1];
    shape[0] = settings.batch();
    System.arraycopy(sample, 0, shape, 1, sample.length);
    Tensor input = KeypointWorkload.gaussian(generator, shape).to(device);
    input.requiresGrad(true);
    Tensor gradOutput = Tensor.full(1.0, DType.FLOAT32, device, module.forward(input).shape());

    for (int i = 0; i < settings.warmup(); i++) {
      pass(module, input, gradOutput, device);
    }
    double[] millis = new double[settings.repeats()];
    for (int i = 0; i < millis.length; i++) {
      long start = System.nanoTime();
      pass(module, input, gradOutput, device);
      millis[i] = (System.nanoTime() - start) / 1e6;
    }
    return millis;
  }

  private static void pass(Module module, Tensor input, Tensor gradOutput, Device device) {
    try (var _ = MemoryScope.open()) {
      module.zeroGrad();
      input.zeroGrad();
      module.forward(input).backward(gradOutput);
      BenchDevice.synchronize(device);
    }
  }

  /**
   * Returns the provider that serves layers of {@code kind} on {@code device}, in lower case: the
   * cuBLAS choice for linear layers and the cuDNN choice for the others. Devices other than CUDA
   * have no vendor libraries, so they always return {@code kiln}.
   */
  private static String provider(Device device, String kind) {
    if (!(DeviceKernels.of(device).runtime() instanceof CudaRuntime cuda)) {
      return "kiln";
    }
    VendorBindings bindings = VendorBindings.of(cuda.context());
    VendorSelection.Provider provider =
        kind.equals("linear")
            ? bindings.blasSelection().provider()
            : bindings.dnnSelection().provider();
    return provider.name().toLowerCase(Locale.ROOT);
  }
}
