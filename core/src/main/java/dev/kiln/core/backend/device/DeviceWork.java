package dev.kiln.core.backend.device;

import java.util.Collections;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * A snapshot of the work that one device has done since its runtime opened, from {@link
 * DeviceRuntime#work()}. The {@link #minus difference} of two snapshots is the work of the calls
 * made in between, by every thread that used the device:
 *
 * {@snippet :
 * DeviceWork before = runtime.work();
 * trainStep();
 * DeviceWork step = runtime.work().minus(before);
 * }
 *
 * <p>What it counts:
 *
 * <ul>
 *   <li>Kernel launches through {@link DeviceRuntime#launch}, by kernel name.
 *   <li>Calls into cuBLAS and cuDNN from kiln's launchers, one per call, by function. The kernels,
 *       copies and waits that a library makes inside a call are not visible, but the workspace that
 *       a cuDNN call draws from kiln's allocator counts among the allocations.
 *   <li>Copies through {@link DeviceRuntime#copyToDevice}, {@link DeviceRuntime#copyToHost} and
 *       {@link DeviceRuntime#copyWithinDevice}, each with its bytes.
 *   <li>Calls of {@link DeviceRuntime#synchronize()}.
 *   <li>The allocation counts of the device's {@link dev.kiln.core.backend.cuda.CachingAllocator}:
 *       every allocation, those served from its cache, and the raw allocations and frees that
 *       reached the device.
 * </ul>
 *
 * <p>A synchronous copy to or from a Java array on a CUDA device first waits for the stream (see
 * {@link dev.kiln.core.backend.cuda.CudaCopies}), and so does a raw free. Those waits are not in
 * {@link #synchronizations()}, so on a GPU the host waits for the device about {@code
 * synchronizations + copiesToDevice + copiesToHost + deviceFrees} times.
 *
 * @param launchesByKernel launches per kernel name, sorted by name
 * @param libraryCallsByFunction cuBLAS and cuDNN calls per function, such as {@code
 *     cudnn.convolutionForward}, sorted by name
 * @param copiesToDevice copies from Java arrays to the device
 * @param bytesToDevice bytes of those copies
 * @param copiesToHost copies from the device to Java arrays
 * @param bytesToHost bytes of those copies
 * @param copiesWithinDevice copies between two buffers of the device
 * @param bytesWithinDevice bytes of those copies
 * @param synchronizations calls of {@link DeviceRuntime#synchronize()}
 * @param allocations blocks that the caching allocator handed out
 * @param cacheHits those of {@code allocations} that came from its cache
 * @param deviceAllocations raw allocations from the device, which a GPU pays for in the driver
 * @param deviceFrees raw frees to the device, each of which waits for the stream on a GPU
 */
public record DeviceWork(
    Map<String, Long> launchesByKernel,
    Map<String, Long> libraryCallsByFunction,
    long copiesToDevice,
    long bytesToDevice,
    long copiesToHost,
    long bytesToHost,
    long copiesWithinDevice,
    long bytesWithinDevice,
    long synchronizations,
    long allocations,
    long cacheHits,
    long deviceAllocations,
    long deviceFrees) {

  /** The keys of {@link #summary()}, in its order. */
  private static final String[] SUMMARY_KEYS = {
    "launches",
    "library_calls",
    "h2d",
    "h2d_bytes",
    "d2h",
    "d2h_bytes",
    "d2d",
    "d2d_bytes",
    "syncs",
    "allocations",
    "cache_hits",
    "raw_allocations",
    "raw_frees"
  };

  /** Copies the maps into sorted, unmodifiable ones, so that a snapshot never changes. */
  public DeviceWork {
    launchesByKernel = Collections.unmodifiableSortedMap(new TreeMap<>(launchesByKernel));
    libraryCallsByFunction =
        Collections.unmodifiableSortedMap(new TreeMap<>(libraryCallsByFunction));
  }

  /** Returns the number of kernel launches, all kernels together. */
  public long launches() {
    return total(launchesByKernel);
  }

  /** Returns the number of cuBLAS and cuDNN calls, all functions together. */
  public long libraryCalls() {
    return total(libraryCallsByFunction);
  }

  /**
   * Returns the work done between {@code earlier} and this snapshot of the same device. Kernels and
   * functions that were not called in between are left out of the maps.
   */
  public DeviceWork minus(DeviceWork earlier) {
    return new DeviceWork(
        difference(launchesByKernel, earlier.launchesByKernel),
        difference(libraryCallsByFunction, earlier.libraryCallsByFunction),
        copiesToDevice - earlier.copiesToDevice,
        bytesToDevice - earlier.bytesToDevice,
        copiesToHost - earlier.copiesToHost,
        bytesToHost - earlier.bytesToHost,
        copiesWithinDevice - earlier.copiesWithinDevice,
        bytesWithinDevice - earlier.bytesWithinDevice,
        synchronizations - earlier.synchronizations,
        allocations - earlier.allocations,
        cacheHits - earlier.cacheHits,
        deviceAllocations - earlier.deviceAllocations,
        deviceFrees - earlier.deviceFrees);
  }

  /**
   * Returns the totals as one line of {@code key=value} fields: {@code launches}, {@code
   * library_calls}, copies host to device ({@code h2d}, {@code h2d_bytes}), device to host ({@code
   * d2h}, {@code d2h_bytes}) and within the device ({@code d2d}, {@code d2d_bytes}), {@code syncs},
   * {@code allocations}, {@code cache_hits}, {@code raw_allocations} and {@code raw_frees}.
   */
  public String summary() {
    return summaryPerStep(1);
  }

  /**
   * Returns the line of {@link #summary()} with every count divided by {@code steps}, the number of
   * steps that this difference covers, as {@link #perStep} writes it.
   *
   * @throws IllegalArgumentException if {@code steps} is below 1
   */
  public String summaryPerStep(int steps) {
    if (steps < 1) {
      throw new IllegalArgumentException("steps must be at least 1, got " + steps);
    }
    long[] counts = {
      launches(),
      libraryCalls(),
      copiesToDevice,
      bytesToDevice,
      copiesToHost,
      bytesToHost,
      copiesWithinDevice,
      bytesWithinDevice,
      synchronizations,
      allocations,
      cacheHits,
      deviceAllocations,
      deviceFrees
    };
    StringBuilder line = new StringBuilder();
    for (int i = 0; i < counts.length; i++) {
      if (i > 0) {
        line.append(' ');
      }
      line.append(SUMMARY_KEYS[i]).append('=').append(perStep(counts[i], steps));
    }
    return line.toString();
  }

  /**
   * Returns {@code count / steps} as an integer where it is whole, else with two decimals, or with
   * two significant digits below 1, so that a rare event stays visible: one raw allocation in 30
   * steps is {@code 0.033}.
   *
   * @throws IllegalArgumentException if {@code steps} is below 1
   */
  public static String perStep(long count, int steps) {
    if (steps < 1) {
      throw new IllegalArgumentException("steps must be at least 1, got " + steps);
    }
    if (count % steps == 0) {
      return Long.toString(count / steps);
    }
    double quotient = (double) count / steps;
    return String.format(Locale.ROOT, Math.abs(quotient) < 1 ? "%.2g" : "%.2f", quotient);
  }

  @Override
  public String toString() {
    return summary();
  }

  private static long total(Map<String, Long> counts) {
    return counts.values().stream().mapToLong(Long::longValue).sum();
  }

  private static Map<String, Long> difference(Map<String, Long> later, Map<String, Long> earlier) {
    Map<String, Long> difference = new TreeMap<>();
    later.forEach(
        (name, count) -> {
          long delta = count - earlier.getOrDefault(name, 0L);
          if (delta != 0) {
            difference.put(name, delta);
          }
        });
    return difference;
  }
}
