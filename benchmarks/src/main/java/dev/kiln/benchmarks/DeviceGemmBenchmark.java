package dev.kiln.benchmarks;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.backend.device.DeviceMatmul;
import dev.kiln.core.backend.device.DeviceRuntime;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Device;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A square float32 matrix product on a GPU, by kiln's two tiled kernels and by cuBLAS, in one run
 * so that the rates compare directly. kiln aims for at least half of cuBLAS's rate at 4096 with its
 * 128 x 128 kernel, which its default product uses at that size when cuBLAS is absent.
 *
 * <p>Run it on a GPU machine with {@code JmhMain DeviceGemmBenchmark}; the default device is {@code
 * cuda:0}. Where cuBLAS did not load, the {@code cublas} case fails in its setup with the loader's
 * reason, and kiln's cases still run. On {@code -p device=emulated -p size=256} the code runs
 * without a GPU, but the rates measure the emulator and nothing else.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class DeviceGemmBenchmark {
  /** The device to run on. */
  @Param({"cuda:0"})
  public String device;

  /** The side of the square matrices. */
  @Param({"4096"})
  public int size;

  /**
   * {@code tiled128} and {@code tiled} for kiln's kernels with 128 x 128 and 64 x 64 tiles, {@code
   * cublas} for cuBLAS's SGEMM.
   */
  @Param({"tiled128", "tiled", "cublas"})
  public String kernel;

  private DeviceRuntime runtime;
  private DeviceMatmul matmul;
  private Device target;
  private DeviceBuffer a;
  private DeviceBuffer b;
  private DeviceBuffer c;
  private DeviceMatmul.Kernel ownKernel;

  /**
   * Returns kiln's kernel that the {@code kernel} parameter names, or null for {@code cublas}.
   *
   * @throws IllegalArgumentException for any other name
   */
  static DeviceMatmul.Kernel ownKernel(String kernel) {
    return switch (kernel) {
      case "tiled128" -> DeviceMatmul.Kernel.TILED_128;
      case "tiled" -> DeviceMatmul.Kernel.TILED;
      case "cublas" -> null;
      default ->
          throw new IllegalArgumentException(
              "kernel must be tiled128, tiled or cublas, got " + kernel);
    };
  }

  /** Opens the device, checks that the chosen kernel is there and fills A and B. */
  @Setup(Level.Trial)
  public void allocate() {
    target = BenchDevice.resolve(device);
    if (target.isCpu()) {
      throw new IllegalArgumentException("DeviceGemmBenchmark needs a device, not the cpu");
    }
    DeviceKernels kernels = DeviceKernels.of(target);
    runtime = kernels.runtime();
    matmul = kernels.matmul();
    if (kernel.equals("cublas") && matmul.vendor() == null) {
      throw new IllegalStateException(
          "cuBLAS is not in use on "
              + device
              + ": see the log line of VendorBindings for the reason, or run -p"
              + " kernel=tiled128");
    }
    ownKernel = ownKernel(kernel);
    long elements = (long) size * size;
    Generator generator = new Generator(7);
    a = runtime.upload(KeypointWorkload.gaussian(generator, size, size).toFloatArray());
    b = runtime.upload(KeypointWorkload.gaussian(generator, size, size).toFloatArray());
    c = runtime.allocateFloats(elements);
  }

  /** Computes C = A B once and waits for it. */
  @Benchmark
  public void product(WorkCounters counters) {
    if (ownKernel == null) {
      matmul.gemm(false, false, size, size, size, a, b, c, false);
    } else {
      matmul.gemm(ownKernel, false, false, size, size, size, a, b, c, false);
    }
    runtime.synchronize();
    counters.flop += 2L * size * size * size;
  }

  /** Returns the three matrices to the allocator. */
  @TearDown(Level.Trial)
  public void release() {
    if (runtime != null) {
      runtime.free(a);
      runtime.free(b);
      runtime.free(c);
    }
  }
}
