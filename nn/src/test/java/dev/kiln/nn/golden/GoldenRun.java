package dev.kiln.nn.golden;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * One way to run a reference case: a dtype and the device that computes it.
 *
 * <p>{@link #all()} is the {@code @MethodSource} of the golden tests: float64 and float32 on the
 * CPU, then float32 on {@code emulated} (kiln's CUDA kernels compiled for the CPU, always present)
 * and on {@code cuda:0} where a GPU is usable. Devices other than the CPU hold float32 only, so
 * they get no float64 run. Where cuda:0 is not usable, the reason is printed once, so a run without
 * a GPU shows why it was left out.
 */
public record GoldenRun(DType dtype, Device device) {
  private static String cudaSkipReason;

  /** Returns every run, CPU runs first. */
  public static synchronized Stream<GoldenRun> all() {
    List<GoldenRun> runs = new ArrayList<>();
    runs.add(new GoldenRun(DType.FLOAT64, Device.CPU));
    runs.add(new GoldenRun(DType.FLOAT32, Device.CPU));
    runs.add(new GoldenRun(DType.FLOAT32, Device.parse("emulated")));
    if (cudaSkipReason == null) {
      CudaAvailability cuda = CudaAvailability.check(0);
      cudaSkipReason = cuda.usable() ? "" : cuda.message();
      if (!cuda.usable()) {
        System.out.println("golden tests skip cuda:0: " + cudaSkipReason);
      }
    }
    if (cudaSkipReason.isEmpty()) {
      runs.add(new GoldenRun(DType.FLOAT32, Device.parse("cuda:0")));
    }
    return runs.stream();
  }

  /** Returns "float32 on emulated" and the like, for the test report. */
  @Override
  public String toString() {
    return dtype + " on " + device;
  }
}
