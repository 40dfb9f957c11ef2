package dev.kiln.benchmarks;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Work done by the benchmark methods, reported by JMH next to the primary score. In throughput mode
 * JMH divides each counter by the measured time, so with {@code @OutputTimeUnit(SECONDS)} the
 * {@code flop} column is FLOP/s, {@code values} is input values per second and {@code images} is
 * images per second. {@link JmhMain} rescales them to GFLOP/s and similar units.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class WorkCounters {
  /** Floating-point operations of conv, linear and matrix-product work. */
  public long flop;

  /** Input values processed, the work measure of layers without multiply-accumulates. */
  public long values;

  /** Images processed by the end-to-end benchmarks. */
  public long images;

  /** Clears the counters before each iteration, so that each iteration reports its own rate. */
  @Setup(Level.Iteration)
  public void clear() {
    flop = 0;
    values = 0;
    images = 0;
  }
}
