package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Tests of the CUDA emulation itself, through the kernels in {@code selftest.cu}: warp shuffles and
 * votes, per-block shared memory, atomics, and the checks that turn misuse into a failed launch
 * instead of a hang.
 */
class EmulatorSelfTest {
  private final EmulatedKernels kernels = KernelTestSupport.kernels();
  private KernelTestSupport support;

  @BeforeEach
  void open() {
    support = new KernelTestSupport();
  }

  @AfterEach
  void close() {
    support.close();
    kernels.setBarrierTimeoutMillis(0);
    kernels.resetSchedule();
  }

  @Test
  void libraryListsSelfTestKernels() {
    List<String> names = kernels.kernelNames();
    assertTrue(names.contains("kiln_selftest_warp_sum"), "kernel names: " + names);
    assertTrue(names.contains("kiln_selftest_atomics"), "kernel names: " + names);
  }

  @Test
  void shuffleDownSumsFullWarps() {
    int blocks = 3;
    int threads = 96;
    float[] input = support.randomFloats(blocks * threads);
    MemorySegment sums = support.floats(blocks * threads / 32);
    kernels.launch(
        "kiln_selftest_warp_sum",
        Dim3.of(blocks),
        Dim3.of(threads),
        0,
        support.segmentOf(input),
        sums);

    double[] expected = new double[blocks * threads / 32];
    for (int i = 0; i < input.length; i++) {
      expected[i / 32] += input[i];
    }
    // 32 float additions in a tree: each rounding is at most 2^-24 of a partial sum below 32.
    KernelTestSupport.assertClose(
        "warp sums", expected, KernelTestSupport.toFloats(sums, expected.length), 1e-5, 0);
  }

  @Test
  void shuffleXorReadsEarlierSegments() {
    // Cases of (laneMask, width). CUDA's rule for width < 32: a source lane in an earlier segment
    // is read, and one in a later segment returns the caller's own value.
    int[][] cases = {{1, 32}, {16, 32}, {16, 16}, {24, 8}, {3, 4}};
    for (int[] c : cases) {
      int laneMask = c[0];
      int width = c[1];
      MemorySegment out = support.floats(32);
      kernels.launch("kiln_selftest_shuffle_xor", Dim3.of(1), Dim3.of(32), 0, out, laneMask, width);
      float[] values = KernelTestSupport.toFloats(out, 32);
      for (int lane = 0; lane < 32; lane++) {
        int source = lane ^ laneMask;
        int segmentEnd = lane | (width - 1);
        float expected = source > segmentEnd ? lane : source;
        assertEquals(
            expected,
            values[lane],
            "lane " + lane + " with laneMask " + laneMask + " and width " + width);
      }
    }
  }

  /**
   * Lanes whose results are written out by hand from PTX's shfl.sync.bfly, where lane l reads lane
   * j = l ^ (laneMask & 31) when j <= (l | (width - 1)) and keeps its own value otherwise, so that
   * this check does not share its formula with the emulator.
   */
  @Test
  void shuffleXorMatchesPtxLanes() {
    // Rows of laneMask, width, lane and expected value.
    int[][] cases = {
      {24, 8, 0, 0}, // source 24 is in a later segment
      {24, 8, 8, 8}, // source 16 is in a later segment
      {24, 8, 16, 8}, // source 8 is in an earlier segment
      {24, 8, 24, 0},
      {24, 8, 31, 7},
      {3, 4, 5, 6}, // source 6 is in the lane's own segment
      {35, 32, 0, 3}, // PTX keeps the low 5 bits of laneMask, 35 & 31 = 3
      {35, 32, 30, 29},
    };
    for (int[] c : cases) {
      MemorySegment out = support.floats(32);
      kernels.launch("kiln_selftest_shuffle_xor", Dim3.of(1), Dim3.of(32), 0, out, c[0], c[1]);
      float[] values = KernelTestSupport.toFloats(out, 32);

      assertEquals(
          c[3], values[c[2]], "lane " + c[2] + " with laneMask " + c[0] + " and width " + c[1]);
    }
  }

  @Test
  void votesCoverPartialWarp() {
    int threads = 40; // a full warp and a partial warp of 8 lanes
    float[] input = new float[threads];
    for (int i = 0; i < threads; i++) {
      input[i] = i % 3 == 0 ? 1f : -1f;
    }
    input[32] = 1f; // the partial warp: lanes 0 and 3 and 6 are positive, and lane 0 anyway
    MemorySegment ballots = support.ints(threads);
    MemorySegment any = support.ints(threads);
    MemorySegment all = support.ints(threads);
    kernels.launch(
        "kiln_selftest_votes",
        Dim3.of(1),
        Dim3.of(threads),
        0,
        support.segmentOf(input),
        ballots,
        any,
        all);

    int fullWarp = 0;
    for (int lane = 0; lane < 32; lane++) {
      fullWarp |= lane % 3 == 0 ? 1 << lane : 0;
    }
    int partialWarp = 0;
    for (int lane = 0; lane < 8; lane++) {
      partialWarp |= (32 + lane) % 3 == 0 || lane == 0 ? 1 << lane : 0;
    }
    int[] ballotOut = KernelTestSupport.toInts(ballots, threads);
    assertEquals(fullWarp, ballotOut[5], "ballot of the full warp");
    assertEquals(partialWarp, ballotOut[35], "ballot of the partial warp");
    assertEquals(1, KernelTestSupport.toInts(any, threads)[0], "any of the full warp");
    assertEquals(0, KernelTestSupport.toInts(all, threads)[0], "all of the full warp");
  }

  @Test
  void syncwarpOrdersSharedStores() {
    int threads = 96;
    for (EmulatedKernels.Schedule schedule : EmulatedKernels.Schedule.values()) {
      kernels.setSchedule(schedule, 7);
      MemorySegment out = support.ints(threads);
      kernels.launch("kiln_selftest_warp_barrier", Dim3.of(1), Dim3.of(threads), 0, out);
      int[] values = KernelTestSupport.toInts(out, threads);
      for (int i = 0; i < threads; i++) {
        int lane = i % 32;
        assertEquals(i - lane + (lane + 1) % 32, values[i], schedule + ": thread " + i);
      }
    }
  }

  @Test
  void sharedMemoryIsPerBlock() {
    int blocks = 3;
    int threads = 50;
    MemorySegment out = support.ints(2 * blocks * threads);
    kernels.launch(
        "kiln_selftest_shared_per_block", Dim3.of(blocks), Dim3.of(threads), 4 * threads, out);

    int[] expected = new int[2 * blocks * threads];
    for (int b = 0; b < blocks; b++) {
      for (int t = 0; t < threads; t++) {
        int i = b * threads + t;
        expected[2 * i] = 1000 * b;
        expected[2 * i + 1] = 1000 * b + (t + 1) % threads;
      }
    }
    assertArrayEquals(expected, KernelTestSupport.toInts(out, expected.length));
  }

  @Test
  void atomicsFromManyThreadsAreExact() {
    int blocks = 7;
    int threads = 100;
    MemorySegment intTotal = support.ints(1);
    MemorySegment floatCount = support.floats(1);
    MemorySegment maxIndex = support.ints(1);
    kernels.launch(
        "kiln_selftest_atomics",
        Dim3.of(blocks),
        Dim3.of(threads),
        0,
        intTotal,
        floatCount,
        maxIndex);

    int n = blocks * threads;
    assertEquals(n * (n - 1) / 2, intTotal.get(ValueLayout.JAVA_INT, 0), "sum of indices");
    assertEquals((float) n, floatCount.get(ValueLayout.JAVA_FLOAT, 0), "count in float");
    assertEquals(n - 1, maxIndex.get(ValueLayout.JAVA_INT, 0), "maximum index");
  }

  @Test
  void fullSizeTwoDimensionalBlocksRun() {
    // Two blocks of 32 x 32 = 1024 threads, the most CUDA allows, indexed in two dimensions.
    MemorySegment intTotal = support.ints(1);
    MemorySegment floatCount = support.floats(1);
    MemorySegment maxIndex = support.ints(1);
    kernels.launch(
        "kiln_selftest_atomics", Dim3.of(2), Dim3.of(32, 32), 0, intTotal, floatCount, maxIndex);

    // The kernel's index uses threadIdx.x only, so each x value occurs 32 times per block.
    int expectedTotal = 0;
    for (int block = 0; block < 2; block++) {
      for (int x = 0; x < 32; x++) {
        expectedTotal += 32 * (block * 32 + x);
      }
    }
    assertEquals(expectedTotal, intTotal.get(ValueLayout.JAVA_INT, 0), "sum of indices");
    assertEquals(2048f, floatCount.get(ValueLayout.JAVA_FLOAT, 0), "count in float");
    assertEquals(63, maxIndex.get(ValueLayout.JAVA_INT, 0), "maximum index");
  }

  @Test
  void barrierMissedByEarlyReturnFails() {
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_partial_barrier",
                    Dim3.of(1),
                    Dim3.of(64),
                    0,
                    support.floats(64)));
    assertTrue(error.getMessage().contains("reached by only 16 of 64"), error.getMessage());
    assertTrue(error.getMessage().contains("kiln_selftest_partial_barrier"), error.getMessage());
  }

  @Test
  void barrierTimesOutWhenThreadsSpin() {
    kernels.setBarrierTimeoutMillis(200);
    long start = System.nanoTime();
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_barrier_timeout", Dim3.of(1), Dim3.of(64), 0, support.ints(1)));
    long millis = (System.nanoTime() - start) / 1_000_000;
    assertTrue(error.getMessage().contains("timed out after 200 ms"), error.getMessage());
    // Generous against a loaded machine, and far below the 5 s default that would mean the
    // setter did not reach the library.
    assertTrue(millis < 3000, "the timed-out launch took " + millis + " ms");
  }

  @Test
  void serialScheduleTimesOutWhenThreadSpins() {
    kernels.setBarrierTimeoutMillis(200);
    kernels.setSchedule(EmulatedKernels.Schedule.SERIAL_REVERSE, 0);
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_barrier_timeout", Dim3.of(1), Dim3.of(64), 0, support.ints(1)));
    assertTrue(error.getMessage().contains("timed out after 200 ms"), error.getMessage());
    assertTrue(error.getMessage().contains("waiting for thread (63, 0, 0)"), error.getMessage());
  }

  @Test
  void missingBarrierShowsUnderSerialSchedules() {
    int threads = 128;
    int[] reverse = runMissingBarrier(EmulatedKernels.Schedule.SERIAL_REVERSE, 0, threads);
    for (int i = 0; i < threads; i++) {
      // The last warp reads before its own second store, and every other warp after it.
      int expected = i >= threads - 32 ? 1 : 2;
      assertEquals(expected, reverse[i], "serial-reverse: value read by thread " + i);
    }
    int[] forward = runMissingBarrier(EmulatedKernels.Schedule.SERIAL_FORWARD, 0, threads);
    for (int i = 0; i < threads; i++) {
      // Lane 0 of the last warp stores 2 before lanes 1 to 31 of its own warp read.
      int expected = i > threads - 32 ? 2 : 1;
      assertEquals(expected, forward[i], "serial-forward: value read by thread " + i);
    }
  }

  @Test
  void serialShuffleRepeatsForSameSeed() {
    int threads = 128;
    int[] first = runMissingBarrier(EmulatedKernels.Schedule.SERIAL_SHUFFLE, 12345, threads);
    int[] second = runMissingBarrier(EmulatedKernels.Schedule.SERIAL_SHUFFLE, 12345, threads);
    assertArrayEquals(first, second, "two runs with seed 12345");
    // With this seed, lane 0 of the last warp is not the last thread to run, so some threads
    // read its second store.
    assertTrue(Arrays.stream(first).anyMatch(value -> value == 2), Arrays.toString(first));
    assertTrue(Arrays.stream(first).anyMatch(value -> value == 1), Arrays.toString(first));
  }

  @Test
  void splitWarpFailsAtOnceUnderSerialSchedule() {
    kernels.setSchedule(EmulatedKernels.Schedule.SERIAL_FORWARD, 0);
    long start = System.nanoTime();
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_split_warp", Dim3.of(1), Dim3.of(32), 0, support.floats(32)));
    long millis = (System.nanoTime() - start) / 1_000_000;
    String message = error.getMessage();
    assertTrue(message.contains("no thread can continue"), message);
    assertTrue(message.contains("16 threads wait at __syncthreads"), message);
    assertTrue(
        message.contains(
            "lanes 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,"
                + " 30, 31 of warp 0 wait in __shfl_sync"),
        message);
    // Far below the 5 s barrier timeout, which the parallel schedule would have to wait out.
    assertTrue(millis < 3000, "the deadlocked launch took " + millis + " ms");
  }

  @Test
  void splitWarpTimesOutUnderParallelSchedule() {
    kernels.setSchedule(EmulatedKernels.Schedule.PARALLEL, 0);
    kernels.setBarrierTimeoutMillis(200);
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_split_warp", Dim3.of(1), Dim3.of(32), 0, support.floats(32)));
    assertTrue(error.getMessage().contains("timed out after 200 ms"), error.getMessage());
  }

  @Test
  void sharedMemoryIsPoisonedBeforeEveryBlock() {
    int blocks = 3;
    MemorySegment out = support.ints(2 * blocks);
    kernels.launch("kiln_selftest_shared_poison", Dim3.of(blocks), Dim3.of(1), 4, out);
    // A second launch must not see the 7s that the first one left either.
    kernels.launch("kiln_selftest_shared_poison", Dim3.of(blocks), Dim3.of(1), 4, out);

    int[] values = KernelTestSupport.toInts(out, 2 * blocks);
    for (int b = 0; b < blocks; b++) {
      assertEquals(-1, values[2 * b], "static __shared__ read first in block " + b);
      assertEquals(-1, values[2 * b + 1], "dynamic shared memory read first in block " + b);
    }
  }

  @Test
  void everyScheduleSumsWarps() {
    for (EmulatedKernels.Schedule schedule : EmulatedKernels.Schedule.values()) {
      kernels.setSchedule(schedule, 7);
      shuffleDownSumsFullWarps();
    }
  }

  private int[] runMissingBarrier(EmulatedKernels.Schedule schedule, long seed, int threads) {
    kernels.setSchedule(schedule, seed);
    MemorySegment out = support.ints(threads);
    kernels.launch("kiln_selftest_missing_barrier", Dim3.of(1), Dim3.of(threads), 0, out);
    return KernelTestSupport.toInts(out, threads);
  }

  @Test
  void partialMaskShuffleFails() {
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_partial_mask", Dim3.of(1), Dim3.of(32), 0, support.floats(32)));
    assertTrue(error.getMessage().contains("mask 0x0000ffff"), error.getMessage());
  }

  @Test
  void shuffleFromInactiveLaneFails() {
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_inactive_source",
                    Dim3.of(1),
                    Dim3.of(40),
                    0,
                    support.floats(40)));
    assertTrue(error.getMessage().contains("reads from lane 8"), error.getMessage());
  }

  @Test
  void launchAfterFailureSucceeds() {
    assertThrows(
        KernelLaunchException.class,
        () ->
            kernels.launch(
                "kiln_selftest_partial_barrier", Dim3.of(1), Dim3.of(64), 0, support.floats(64)));
    shuffleDownSumsFullWarps();
  }

  @Test
  void wrongArgumentsAreRejected() {
    KernelLaunchException count =
        assertThrows(
            KernelLaunchException.class,
            () -> kernels.launch("kiln_selftest_warp_sum", Dim3.of(1), Dim3.of(32), 0));
    assertTrue(count.getMessage().contains("takes 2 parameters"), count.getMessage());

    KernelLaunchException type =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_warp_sum", Dim3.of(1), Dim3.of(32), 0, 1, support.floats(1)));
    assertTrue(type.getMessage().contains("argument 0"), type.getMessage());

    KernelLaunchException unknown =
        assertThrows(
            KernelLaunchException.class,
            () -> kernels.launch("kiln_no_such_kernel", Dim3.of(1), Dim3.of(32), 0));
    assertTrue(unknown.getMessage().contains("kiln_no_such_kernel"), unknown.getMessage());
  }

  @Test
  void oversizedBlockIsRejected() {
    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                kernels.launch(
                    "kiln_selftest_atomics",
                    Dim3.of(1),
                    Dim3.of(2048),
                    0,
                    support.ints(1),
                    support.floats(1),
                    support.ints(1)));
    assertTrue(error.getMessage().contains("at most 1024"), error.getMessage());
  }
}
