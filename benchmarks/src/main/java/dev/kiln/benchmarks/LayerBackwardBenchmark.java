package dev.kiln.benchmarks;

import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Backward pass of one layer; see {@link LayerBenchmarkState} for the cases and settings. The
 * forward pass that records the graph runs before each call, outside the timed region. A {@link
 * MemoryScope} spans the two and closes after the call, also outside the timed region.
 */
public class LayerBackwardBenchmark extends LayerBenchmarkState {
  private Tensor output;
  private MemoryScope scope;

  /** Clears the gradients and records a fresh graph for the next {@link #backward} call. */
  @Setup(Level.Invocation)
  public void recordGraph() {
    scope = MemoryScope.open();
    module.zeroGrad();
    input.zeroGrad();
    output = module.forward(input);
  }

  /** Releases the call's memory: device blocks to the cache, CPU arrays to the thread's pool. */
  @TearDown(Level.Invocation)
  public void releaseGraph() {
    scope.close();
  }

  @Benchmark
  public int backward(WorkCounters counters) {
    counters.flop += layerCase.backwardFlop(batch);
    counters.values += layerCase.values(batch);
    output.backward(gradOutput);
    BenchDevice.synchronize(target);
    return input.grad().numel();
  }
}
