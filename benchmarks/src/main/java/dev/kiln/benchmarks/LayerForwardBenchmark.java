package dev.kiln.benchmarks;

import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;

/**
 * Forward pass of one layer; see {@link LayerBenchmarkState} for the cases and settings. Each call
 * runs in a {@link MemoryScope}, so the output's memory is released at once, as PyTorch's would be
 * when the last reference to it goes: a device block to the cache, a CPU array to the thread's
 * pool, where the next call finds it.
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
