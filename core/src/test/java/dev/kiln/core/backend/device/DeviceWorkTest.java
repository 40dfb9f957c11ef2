package dev.kiln.core.backend.device;

import static dev.kiln.core.backend.device.DeviceTestSupport.runtime;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.device.DeviceTestSupport.SkipUnusableCuda;
import dev.kiln.core.ops.UnaryOp;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tests the work counters of the {@link DeviceRuntime}s and the {@link DeviceWork} snapshots. */
@ExtendWith(SkipUnusableCuda.class)
class DeviceWorkTest {

  private static final String DEVICES = "dev.kiln.core.backend.device.DeviceTestSupport#devices";

  @ParameterizedTest
  @MethodSource(DEVICES)
  void runtimeCountsEachKindOfWork(String device) {
    DeviceRuntime runtime = runtime(device);
    DeviceElementwise elementwise = new DeviceElementwise(runtime);
    DeviceBuffer source = runtime.allocateFloats(4);
    DeviceBuffer target = runtime.allocateFloats(4);
    try {
      DeviceWork before = runtime.work();
      runtime.copyToDevice(new float[] {1, 2, 3, 4}, 0, source, 0, 3);
      elementwise.unary(UnaryOp.NEG, 0, 0, source, source, 4);
      elementwise.unary(UnaryOp.EXP, 0, 0, source, source, 4);
      runtime.copyWithinDevice(source, 1, target, 0, 2);
      runtime.synchronize();
      float[] back = new float[2];
      runtime.copyToHost(target, 0, back, 0, 2);
      DeviceWork work = runtime.work().minus(before);

      assertEquals(Map.of("kiln_elementwise_unary", 2L), work.launchesByKernel());
      assertEquals(2, work.launches());
      assertEquals(1, work.copiesToDevice());
      assertEquals(12, work.bytesToDevice());
      assertEquals(1, work.copiesWithinDevice());
      assertEquals(8, work.bytesWithinDevice());
      assertEquals(1, work.copiesToHost());
      assertEquals(8, work.bytesToHost());
      assertEquals(1, work.synchronizations());
      assertEquals(0, work.libraryCalls());
      assertEquals(0, work.allocations(), "the launches and copies allocate nothing");
      assertEquals((float) Math.exp(-2), back[0], "the counted work ran");
    } finally {
      runtime.free(source);
      runtime.free(target);
    }
  }

  @Test
  void allocationsComeFromAllocatorStats() {
    // A runtime of its own, whose cache starts empty.
    try (EmulatedRuntime runtime = EmulatedRuntime.create(1 << 20)) {
      DeviceWork before = runtime.work();
      runtime.free(runtime.allocateFloats(100));
      runtime.free(runtime.allocateFloats(100));
      runtime.allocator().emptyCache();
      DeviceWork work = runtime.work().minus(before);

      assertEquals(2, work.allocations());
      assertEquals(1, work.cacheHits(), "the second request takes the block the first freed");
      assertEquals(1, work.deviceAllocations());
      assertEquals(1, work.deviceFrees());
    }
  }

  @Test
  void libraryCallsCountOncePerCall() {
    DeviceRuntime runtime = runtime("emulated");
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    DeviceKernels kernels = DeviceKernels.over(runtime, blas, null, "a host stand-in for cuBLAS");
    try (DeviceTestSupport.Buffers buffers = new DeviceTestSupport.Buffers(runtime)) {
      DeviceBuffer a = buffers.of(new float[] {1, 2, 3, 4});
      DeviceBuffer c = buffers.filled(4);
      DeviceWork before = runtime.work();
      kernels.matmul().gemm(false, false, 2, 2, 2, a, a, c, false);
      kernels.matmul().vendor().description();
      DeviceWork work = runtime.work().minus(before);

      // sgemmRowMajor is a default method that calls sgemm on the binding itself, so the one
      // product counts once, and description() is no library call.
      assertEquals(Map.of("cublas.sgemmRowMajor", 1L), work.libraryCallsByFunction());
      assertEquals(List.of("sgemm"), blas.calls, "the product reached the stand-in");
      assertEquals(0, work.launches());
      assertArrayEquals(new float[] {7, 10, 15, 22}, buffers.read(c, 4));
    }
  }

  @Test
  void libraryExceptionReachesCallerUnwrapped() {
    DeviceRuntime runtime = runtime("emulated");
    IllegalStateException failure = new IllegalStateException("CUBLAS_STATUS_EXECUTION_FAILED");
    VendorBlas failing =
        LibraryCallCounting.wrap(
            VendorBlas.class, new FailingBlas(failure), "cublas", runtime.counters());

    IllegalStateException thrown =
        assertThrows(
            IllegalStateException.class,
            () -> failing.sgemm(false, false, 1, 1, 1, 1f, 8, 1, 8, 1, 0f, 8, 1));
    assertSame(failure, thrown);
  }

  @Test
  void countingProxyEqualsItself() {
    DeviceCounters counters = new DeviceCounters();
    HostStandInVendors.Blas blas = new HostStandInVendors.Blas();
    VendorBlas counted = LibraryCallCounting.wrap(VendorBlas.class, blas, "cublas", counters);
    VendorBlas countedAgain = LibraryCallCounting.wrap(VendorBlas.class, blas, "cublas", counters);
    VendorBlas other =
        LibraryCallCounting.wrap(
            VendorBlas.class, new HostStandInVendors.Blas(), "cublas", counters);

    assertTrue(counted.equals(counted), "a proxy equals itself");
    assertTrue(counted.equals(countedAgain), "two proxies of one binding are equal");
    assertFalse(counted.equals(other), "proxies of two bindings differ");
    assertFalse(counted.equals(null), "a proxy never equals null");
    assertEquals(blas.hashCode(), counted.hashCode(), "the binding's hash code");
    assertEquals(blas.toString(), counted.toString(), "the binding's text");
    assertEquals(
        Map.of(),
        counters.snapshot(runtime("emulated").allocator().stats()).libraryCallsByFunction());
  }

  @Test
  void countersAddUpAcrossThreads() throws InterruptedException {
    DeviceCounters counters = new DeviceCounters();
    int threads = 4;
    int perThread = 10_000;
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Thread worker =
          Thread.ofPlatform()
              .start(
                  () -> {
                    for (int i = 0; i < perThread; i++) {
                      counters.countLaunch(i % 2 == 0 ? "even" : "odd");
                      counters.countCopyToHost(4);
                    }
                  });
      workers.add(worker);
    }
    for (Thread worker : workers) {
      worker.join();
    }
    DeviceWork work = counters.snapshot(runtime("emulated").allocator().stats());

    assertEquals(threads * perThread / 2L, work.launchesByKernel().get("even"));
    assertEquals(threads * perThread / 2L, work.launchesByKernel().get("odd"));
    assertEquals((long) threads * perThread, work.copiesToHost());
    assertEquals(4L * threads * perThread, work.bytesToHost());
  }

  @Test
  void differenceDropsKernelsNotCalledSince() {
    DeviceWork earlier = work(Map.of("a", 3L, "b", 1L), 2);
    DeviceWork later = work(Map.of("a", 5L, "b", 1L, "c", 2L), 7);

    DeviceWork difference = later.minus(earlier);

    assertEquals(Map.of("a", 2L, "c", 2L), difference.launchesByKernel());
    assertEquals(4, difference.launches());
    assertEquals(5, difference.copiesToHost());
  }

  @Test
  void perStepWritesWholeAndFractionalCounts() {
    assertEquals("2", DeviceWork.perStep(60, 30));
    assertEquals("0", DeviceWork.perStep(0, 30));
    assertEquals("1.50", DeviceWork.perStep(45, 30));
    assertEquals("0.033", DeviceWork.perStep(1, 30), "one event in 30 steps stays visible");
    assertThrows(IllegalArgumentException.class, () -> DeviceWork.perStep(1, 0));
  }

  @Test
  void summaryPerStepDividesEveryCount() {
    DeviceWork work = work(Map.of("k", 60L), 30);

    assertEquals(
        "launches=2 library_calls=0 h2d=0 h2d_bytes=0 d2h=1 d2h_bytes=4 d2d=0 d2d_bytes=0"
            + " syncs=0 allocations=0 cache_hits=0 raw_allocations=0 raw_frees=0",
        work.summaryPerStep(30));
  }

  /** Returns a snapshot with these launches and {@code copiesToHost} copies of 4 bytes each. */
  private static DeviceWork work(Map<String, Long> launches, long copiesToHost) {
    return new DeviceWork(
        launches, Map.of(), 0, 0, copiesToHost, 4 * copiesToHost, 0, 0, 0, 0, 0, 0, 0);
  }

  /** A cuBLAS binding whose every product fails with one exception. */
  private record FailingBlas(RuntimeException failure) implements VendorBlas {
    @Override
    public void sgemm(
        boolean transposeA,
        boolean transposeB,
        int m,
        int n,
        int k,
        float alpha,
        long a,
        int lda,
        long b,
        int ldb,
        float beta,
        long c,
        int ldc) {
      throw failure;
    }

    @Override
    public void sgemmStridedBatched(
        boolean transposeA,
        boolean transposeB,
        int m,
        int n,
        int k,
        float alpha,
        long a,
        int lda,
        long strideA,
        long b,
        int ldb,
        long strideB,
        float beta,
        long c,
        int ldc,
        long strideC,
        int batchCount) {
      throw failure;
    }

    @Override
    public String description() {
      return "a binding that always fails";
    }

    @Override
    public void close() {}
  }
}
