package dev.kiln.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class GeometryTest {

  @Test
  void convOutputSizeFollowsPyTorchFormula() {
    // floor((7 + 2 - 2 * 2 - 1) / 2) + 1 = 3 and floor((5 + 0 - 1 * 2 - 1) / 1) + 1 = 3.
    Conv2dGeometry g = new Conv2dGeometry(2, 3, 7, 5, 4, 3, 3, 2, 1, 1, 0, 2, 1);
    assertEquals(3, g.outHeight());
    assertEquals(3, g.outWidth());
  }

  @Test
  void convKernelTooLargeRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Conv2dGeometry(1, 1, 3, 3, 1, 5, 5, 1, 1, 0, 0, 1, 1));
    assertEquals(
        "kernel 5x5 with dilation 1 does not fit input 3x3 with padding 0: make the input larger"
            + " or add padding",
        error.getMessage());
  }

  @Test
  void convDilatedKernelTooLargeRejected() {
    // Dilation 2 spreads a 3x3 kernel over 5x5, which a 4x4 input cannot hold.
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Conv2dGeometry(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 2, 2));
    assertEquals(
        "kernel 3x3 with dilation 2 does not fit input 4x4 with padding 0: make the input larger"
            + " or add padding",
        error.getMessage());
  }

  @Test
  void convZeroStrideRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Conv2dGeometry(1, 1, 4, 4, 1, 3, 3, 0, 1, 0, 0, 1, 1));
    assertEquals("strideHeight must be positive, got 0", error.getMessage());
  }

  @Test
  void convNegativePaddingRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> new Conv2dGeometry(1, 1, 4, 4, 1, 3, 3, 1, 1, 0, -1, 1, 1));
    assertEquals("padding must be non-negative, got 0x-1", error.getMessage());
  }

  @Test
  void poolOutputSizeRoundsDown() {
    // floor((7 + 2 - 3) / 2) + 1 = 4 and floor((5 + 2 - 3) / 2) + 1 = 3.
    Pool2dGeometry g = new Pool2dGeometry(1, 3, 7, 5, 3, 3, 2, 2, 1, 1);
    assertEquals(4, g.outHeight());
    assertEquals(3, g.outWidth());
  }

  @Test
  void poolPaddingOverHalfKernelRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> new Pool2dGeometry(1, 1, 7, 7, 3, 3, 1, 1, 2, 1));
    assertEquals(
        "padding 2x1 is more than half of kernel 3x3: pad must be at most kernel / 2 (rounded"
            + " down), as in PyTorch",
        error.getMessage());
  }

  @Test
  void poolKernelTooLargeRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> new Pool2dGeometry(1, 1, 3, 3, 5, 5, 1, 1, 0, 0));
    assertEquals(
        "kernel 5x5 does not fit input 3x3 with padding 0x0: make the input larger, the kernel"
            + " smaller or add padding",
        error.getMessage());
  }

  @Test
  void poolZeroChannelsRejected() {
    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class, () -> new Pool2dGeometry(1, 0, 3, 3, 2, 2, 1, 1, 0, 0));
    assertEquals("channels must be positive, got 0", error.getMessage());
  }
}
