package dev.kiln.benchmarks;

import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;

/**
 * Forward pass of one layer; see {@link LayerBenchmarkState} for the cases and settings. Each call
 * runs in a {@link MemoryScope}, so on a device the output's block returns to the cache at once, as
 * PyTorch's would when the last reference to it goes.
 */
public class LayerForwardBenchmark extends LayerBenchmarkState {
  @Benchmark
  public int forward(WorkCounters counters) {
    counters.flop += layerCase.forwardFlop(batch);
    counters.values += layerCase.values(batch);
    try (var _ = MemoryScope.open()) {
      Tensor output = module.forward(input);
      BenchDevice.synchronize(target);
      return output.numel();
    }
  }
}
