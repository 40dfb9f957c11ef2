package dev.kiln.benchmarks;

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
 * End to end: one training step (forward, MSE loss, backward, Adam step) and one inference batch
 * (evaluation mode, no gradient recording) of each keypoint preset, as defined by {@link
 * KeypointWorkload}. The {@code images} counter is images per second.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class TrainingBenchmark {
  @Param({"default", "naimishnet", "lenet-20m", "lenet-48m"})
  public String model;

  @Param({"10", "32"})
  public int batch;

  /** Device to run on; see {@link BenchDevice} for the devices accepted today. */
  @Param({"cpu"})
  public String device;

  private KeypointWorkload workload;

  @Setup(Level.Trial)
  public void buildModel() {
    workload = new KeypointWorkload(model, batch, device, 42);
  }

  @Benchmark
  public double trainStep(WorkCounters counters) {
    counters.images += batch;
    return workload.trainStep();
  }

  @Benchmark
  public int inferBatch(WorkCounters counters) {
    counters.images += batch;
    return workload.inferBatch();
  }
}
