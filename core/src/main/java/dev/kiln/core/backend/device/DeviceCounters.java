package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.AllocatorStats;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * Running totals of the work that one device's runtime has issued since it opened. They count
 * kernel launches by kernel name, copies in each direction with their bytes, explicit
 * synchronizations, and calls into cuBLAS and cuDNN by function. {@link DeviceRuntime#work()} takes
 * a {@link DeviceWork} snapshot of them, and the difference of two snapshots is the work of the
 * calls in between.
 *
 * <p>Each runtime counts in its own {@code launch}, {@code copyToDevice}, {@code copyToHost},
 * {@code copyWithinDevice} and {@code synchronize}, and {@link DeviceKernels} counts the library
 * calls of the launchers that it builds. Work that bypasses those methods, such as a direct call to
 * {@link dev.kiln.core.backend.cuda.CudaContext#synchronize()}, is not counted.
 *
 * <p>Any thread may count. Every counter is a {@link LongAdder}, so that threads that launch at the
 * same time do not contend on one memory word. Counting one launch and one copy took about 30 ns
 * together on a two-core x86 machine, small next to the microseconds that a kernel launch costs the
 * host on a GPU.
 */
public final class DeviceCounters {

  private final Map<String, LongAdder> launches = new ConcurrentHashMap<>();
  private final Map<String, LongAdder> libraryCalls = new ConcurrentHashMap<>();
  private final LongAdder copiesToDevice = new LongAdder();
  private final LongAdder bytesToDevice = new LongAdder();
  private final LongAdder copiesToHost = new LongAdder();
  private final LongAdder bytesToHost = new LongAdder();
  private final LongAdder copiesWithinDevice = new LongAdder();
  private final LongAdder bytesWithinDevice = new LongAdder();
  private final LongAdder synchronizations = new LongAdder();

  /** Counts one launch of {@code kernel}. */
  void countLaunch(String kernel) {
    count(launches, kernel);
  }

  /** Counts one call of a vendor-library function, such as {@code cudnn.poolingForward}. */
  void countLibraryCall(String function) {
    count(libraryCalls, function);
  }

  /** Counts one copy of {@code bytes} bytes from a Java array to the device. */
  void countCopyToDevice(long bytes) {
    copiesToDevice.increment();
    bytesToDevice.add(bytes);
  }

  /** Counts one copy of {@code bytes} bytes from the device to a Java array. */
  void countCopyToHost(long bytes) {
    copiesToHost.increment();
    bytesToHost.add(bytes);
  }

  /** Counts one copy of {@code bytes} bytes between two buffers of the device. */
  void countCopyWithinDevice(long bytes) {
    copiesWithinDevice.increment();
    bytesWithinDevice.add(bytes);
  }

  /** Counts one call of {@link DeviceRuntime#synchronize()}. */
  void countSynchronize() {
    synchronizations.increment();
  }

  /**
   * Returns the totals now, together with the allocation counts of {@code allocator}. The counters
   * are read one after another, so work that other threads issue meanwhile may be in some totals
   * and not yet in others.
   */
  DeviceWork snapshot(AllocatorStats allocator) {
    return new DeviceWork(
        totals(launches),
        totals(libraryCalls),
        copiesToDevice.sum(),
        bytesToDevice.sum(),
        copiesToHost.sum(),
        bytesToHost.sum(),
        copiesWithinDevice.sum(),
        bytesWithinDevice.sum(),
        synchronizations.sum(),
        allocator.allocations(),
        allocator.cacheHits(),
        allocator.deviceAllocations(),
        allocator.deviceFrees());
  }

  private static void count(Map<String, LongAdder> counters, String name) {
    LongAdder counter = counters.get(name);
    if (counter == null) {
      counter = counters.computeIfAbsent(name, unused -> new LongAdder());
    }
    counter.increment();
  }

  private static Map<String, Long> totals(Map<String, LongAdder> counters) {
    Map<String, Long> totals = new TreeMap<>();
    counters.forEach((name, counter) -> totals.put(name, counter.sum()));
    return totals;
  }
}
