package dev.kiln.core.backend.cpu;

import dev.kiln.benchmarks.BenchDevice;
import dev.kiln.benchmarks.GemmCase;
import dev.kiln.benchmarks.WorkCounters;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * float32 matrix product through each {@link Gemm.Path}, at 1024 x 1024 x 1024 and at the per-image
 * products of the presets' conv layers (see {@link GemmCase}). It sits in Gemm's package because
 * the overload that forces a path is package-private.
 *
 * <p>The LOOP and EJML paths run on one thread. The VECTOR path splits products from 2^20
 * multiply-accumulates on across the {@code kiln.threads} pool, so at 1024^3 it uses every core;
 * inside a conv layer the kernel splits the batch across the pool instead and each per-image
 * product runs on one thread.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class GemmBenchmark {
  /** Every entry of {@link GemmCase#all()}; a unit test checks that the two lists agree. */
  @Param({
    "1024x1024x1024",
    "default/0-conv:forward",
    "default/0-conv:input-grad",
    "default/0-conv:weight-grad",
    "default/4-conv:forward",
    "default/4-conv:input-grad",
    "default/4-conv:weight-grad",
    "default/8-conv:forward",
    "default/8-conv:input-grad",
    "default/8-conv:weight-grad",
    "default/12-conv:forward",
    "default/12-conv:input-grad",
    "default/12-conv:weight-grad",
    "default/16-conv:forward",
    "default/16-conv:input-grad",
    "default/16-conv:weight-grad",
    "naimishnet/0-conv:forward",
    "naimishnet/0-conv:input-grad",
    "naimishnet/0-conv:weight-grad",
    "naimishnet/4-conv:forward",
    "naimishnet/4-conv:input-grad",
    "naimishnet/4-conv:weight-grad",
    "naimishnet/8-conv:forward",
    "naimishnet/8-conv:input-grad",
    "naimishnet/8-conv:weight-grad",
    "naimishnet/12-conv:forward",
    "naimishnet/12-conv:input-grad",
    "naimishnet/12-conv:weight-grad",
    "lenet-20m/0-conv:forward",
    "lenet-20m/0-conv:input-grad",
    "lenet-20m/0-conv:weight-grad",
    "lenet-20m/3-conv:forward",
    "lenet-20m/3-conv:input-grad",
    "lenet-20m/3-conv:weight-grad",
    "lenet-20m/6-conv:forward",
    "lenet-20m/6-conv:input-grad",
    "lenet-20m/6-conv:weight-grad",
    "lenet-20m/9-conv:forward",
    "lenet-20m/9-conv:input-grad",
    "lenet-20m/9-conv:weight-grad",
    "lenet-48m/3-conv:forward",
    "lenet-48m/3-conv:input-grad",
    "lenet-48m/3-conv:weight-grad",
    "lenet-48m/6-conv:forward",
    "lenet-48m/6-conv:input-grad",
    "lenet-48m/6-conv:weight-grad",
    "lenet-48m/9-conv:forward",
    "lenet-48m/9-conv:input-grad",
    "lenet-48m/9-conv:weight-grad",
  })
  public String shape;

  @Param({"LOOP", "EJML", "VECTOR"})
  public String path;

  /** Device to run on; see {@link BenchDevice} for the devices accepted today. */
  @Param({"cpu"})
  public String device;

  private GemmCase product;
  private Gemm.Path gemmPath;
  private Storage a;
  private Storage b;
  private Storage c;

  /** Fills A and B with standard normal values. */
  @Setup(Level.Trial)
  public void allocate() {
    BenchDevice.resolve(device);
    product = GemmCase.parse(shape);
    gemmPath = Gemm.Path.valueOf(path);
    Generator generator = new Generator(42);
    int[] sizes = product.sizes();
    a = storageOf(generator, sizes[0]);
    b = storageOf(generator, sizes[1]);
    c = storageOf(generator, sizes[2]);
  }

  private static Storage storageOf(Generator generator, int count) {
    Tensor values = dev.kiln.benchmarks.KeypointWorkload.gaussian(generator, count);
    return values.storage();
  }

  @Benchmark
  public Storage multiply(WorkCounters counters) {
    counters.flop += product.flop();
    Gemm.gemm(
        gemmPath,
        product.transA(),
        product.transB(),
        product.m(),
        product.n(),
        product.k(),
        a,
        0,
        b,
        0,
        c,
        0,
        false);
    return c;
  }
}
