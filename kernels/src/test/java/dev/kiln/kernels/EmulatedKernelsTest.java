package dev.kiln.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Tests of the Java side of the kernels module: loading, kernel lists, handles and the fatbin. */
class EmulatedKernelsTest {

  /** The first four bytes of every CUDA fatbin, little-endian. */
  private static final int FATBIN_MAGIC = 0xBA55ED50;

  @Test
  void libraryHasEveryFamily() {
    List<String> names = KernelTestSupport.kernels().kernelNames();
    for (String family :
        List.of(
            "elementwise",
            "reductions",
            "matmul",
            "losses",
            "optimizers",
            "conv",
            "pool",
            "batchnorm",
            "dropout",
            "layout",
            "selftest")) {
      assertTrue(
          names.stream().anyMatch(name -> name.startsWith("kiln_" + family + "_")),
          "no kiln_" + family + "_ kernel among " + names);
    }
  }

  @Test
  void missingLibraryFileIsNamed() {
    String previous = System.getProperty(EmulatorLibrary.PATH_PROPERTY);
    System.setProperty(EmulatorLibrary.PATH_PROPERTY, "/nonexistent/libkiln_emu.so");
    try {
      IllegalStateException error =
          assertThrows(IllegalStateException.class, EmulatedKernels::load);
      assertTrue(error.getMessage().contains("/nonexistent/libkiln_emu.so"), error.getMessage());
      assertTrue(error.getMessage().contains("mvn -pl kernels package"), error.getMessage());
    } finally {
      if (previous == null) {
        System.clearProperty(EmulatorLibrary.PATH_PROPERTY);
      } else {
        System.setProperty(EmulatorLibrary.PATH_PROPERTY, previous);
      }
    }
  }

  @Test
  void closedHandleRejectsCalls() {
    EmulatedKernels kernels = EmulatedKernels.load();
    kernels.close();
    assertThrows(IllegalStateException.class, kernels::kernelNames);
    // The library stays loaded, so other handles keep working.
    assertFalse(KernelTestSupport.kernels().kernelNames().isEmpty());
  }

  @Test
  void closedArenaSegmentRejected() {
    MemorySegment freed;
    try (Arena arena = Arena.ofConfined()) {
      freed = arena.allocate(ValueLayout.JAVA_FLOAT, 64);
    }
    MemorySegment segment = freed;

    KernelLaunchException error =
        assertThrows(
            KernelLaunchException.class,
            () ->
                KernelTestSupport.kernels()
                    .launch(
                        "kiln_elementwise_unary",
                        Dim3.of(1),
                        Dim3.of(64),
                        0,
                        segment,
                        segment,
                        64,
                        11,
                        0f,
                        0f));

    assertTrue(error.getMessage().contains("argument 0"), error.getMessage());
    assertTrue(error.getMessage().contains("arena is already closed"), error.getMessage());
  }

  @Test
  void dim3RejectsZeroExtent() {
    assertThrows(IllegalArgumentException.class, () -> Dim3.of(0));
    assertEquals(new Dim3(5, 1, 1), Dim3.of(5));
    assertEquals(4, Dim3.blocksFor(1000, 256));
    assertThrows(IllegalArgumentException.class, () -> Dim3.blocksFor(10, 0));
    assertThrows(IllegalArgumentException.class, () -> Dim3.blocksFor(-5, 256));
    assertEquals(1, Dim3.blocksFor(0, 256));
  }

  @Test
  void fatbinIsPresentOrExplained() {
    Optional<byte[]> fatbin = KernelImage.fatbin();
    if (fatbin.isPresent()) {
      int magic = ByteBuffer.wrap(fatbin.get()).order(ByteOrder.LITTLE_ENDIAN).getInt();
      assertEquals(FATBIN_MAGIC, magic, "the fatbin's first four bytes");
      assertEquals("", KernelImage.missingReason());
    } else {
      // Built without nvcc or with -Dkiln.fatbin.skip=true: the reason must name the cause.
      String reason = KernelImage.missingReason();
      assertTrue(reason.contains("nvcc") || reason.contains("kiln.fatbin.skip"), reason);
    }
  }
}
