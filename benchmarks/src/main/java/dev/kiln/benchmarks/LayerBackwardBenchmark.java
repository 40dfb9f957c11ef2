package dev.kiln.benchmarks;

import dev.kiln.core.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Setup;

/**
 * Backward pass of one layer; see {@link LayerBenchmarkState} for the cases and settings. The
 * forward pass that records the graph runs before each call, outside the timed region.
 */
public class LayerBackwardBenchmark extends LayerBenchmarkState {
  private Tensor output;

  /** Clears the gradients and records a fresh graph for the next {@link #backward} call. */
  @Setup(Level.Invocation)
  public void recordGraph() {
    module.zeroGrad();
    input.zeroGrad();
    output = module.forward(input);
  }

  @Benchmark
  public Tensor backward(WorkCounters counters) {
    counters.flop += layerCase.backwardFlop(batch);
    counters.values += layerCase.values(batch);
    output.backward(gradOutput);
    BenchDevice.synchronize(target);
    return input.grad();
  }
}
