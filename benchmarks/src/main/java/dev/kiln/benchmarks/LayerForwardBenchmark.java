package dev.kiln.benchmarks;

import dev.kiln.core.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;

/** Forward pass of one layer; see {@link LayerBenchmarkState} for the cases and settings. */
public class LayerForwardBenchmark extends LayerBenchmarkState {
  @Benchmark
  public Tensor forward(WorkCounters counters) {
    counters.flop += layerCase.forwardFlop(batch);
    counters.values += layerCase.values(batch);
    Tensor output = module.forward(input);
    BenchDevice.synchronize(target);
    return output;
  }
}
