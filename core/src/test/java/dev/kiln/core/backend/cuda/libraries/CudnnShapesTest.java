package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Tests the shapes that go into cuDNN descriptors against kiln's own geometry records, which the
 * CPU kernels use, so that both backends agree on every output size.
 */
class CudnnShapesTest {

  /** Convolutions that cover stride, padding, dilation, rectangles and non-dividing strides. */
  private static final List<Conv2dGeometry> CONVOLUTIONS =
      List.of(
          new Conv2dGeometry(2, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1),
          new Conv2dGeometry(1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 1, 1),
          new Conv2dGeometry(4, 8, 15, 17, 4, 3, 5, 2, 3, 0, 2, 1, 1),
          new Conv2dGeometry(1, 2, 9, 9, 2, 3, 3, 1, 1, 2, 2, 2, 2),
          new Conv2dGeometry(3, 1, 5, 6, 1, 5, 6, 1, 1, 0, 0, 1, 1),
          new Conv2dGeometry(2, 4, 10, 10, 8, 1, 1, 3, 3, 0, 0, 1, 1),
          new Conv2dGeometry(1, 1, 8, 8, 1, 3, 3, 4, 4, 1, 1, 3, 3));

  private static final List<Pool2dGeometry> POOLINGS =
      List.of(
          new Pool2dGeometry(2, 3, 32, 32, 2, 2, 2, 2, 0, 0),
          new Pool2dGeometry(1, 64, 112, 112, 3, 3, 2, 2, 1, 1),
          new Pool2dGeometry(4, 2, 7, 9, 3, 2, 2, 3, 1, 1),
          new Pool2dGeometry(1, 1, 5, 5, 5, 5, 1, 1, 0, 0),
          new Pool2dGeometry(2, 2, 11, 10, 4, 4, 3, 3, 2, 2));

  @Test
  void convolutionOutputMatchesKilnGeometry() {
    for (Conv2dGeometry g : CONVOLUTIONS) {
      Nchw output = CudnnShapes.convolutionOutput(g);

      assertEquals(g.batch(), output.n(), g.toString());
      assertEquals(g.outChannels(), output.c(), g.toString());
      assertEquals(g.outHeight(), output.h(), g.toString());
      assertEquals(g.outWidth(), output.w(), g.toString());
      assertEquals(g.outputSize(), output.elements(), g.toString());
    }
  }

  @Test
  void convolutionInputFilterAndBias() {
    Conv2dGeometry g = new Conv2dGeometry(2, 3, 32, 30, 16, 3, 5, 1, 1, 1, 2, 1, 1);

    assertEquals(new Nchw(2, 3, 32, 30), CudnnShapes.convolutionInput(g));
    assertEquals(new Nchw(16, 3, 3, 5), CudnnShapes.convolutionFilter(g));
    assertEquals(new Nchw(1, 16, 1, 1), CudnnShapes.convolutionBias(g));
    assertEquals(g.inputSize(), CudnnShapes.convolutionInput(g).elements());
    assertEquals(g.weightSize(), CudnnShapes.convolutionFilter(g).elements());
  }

  @Test
  void poolingOutputMatchesKilnGeometry() {
    for (Pool2dGeometry g : POOLINGS) {
      Nchw output = CudnnShapes.poolingOutput(g);

      assertEquals(g.batch(), output.n(), g.toString());
      assertEquals(g.channels(), output.c(), g.toString());
      assertEquals(g.outHeight(), output.h(), g.toString());
      assertEquals(g.outWidth(), output.w(), g.toString());
      assertEquals(g.outputSize(), output.elements(), g.toString());
      assertEquals(g.inputSize(), CudnnShapes.poolingInput(g).elements(), g.toString());
    }
  }

  @Test
  void packedNchwStrides() {
    Nchw shape = new Nchw(2, 3, 4, 5);

    assertArrayEquals(new int[] {2, 3, 4, 5}, shape.dims());
    assertArrayEquals(new int[] {60, 20, 5, 1}, shape.strides());
    assertEquals(120, shape.elements());
    assertEquals(480, shape.bytes());
  }

  @Test
  void stridesAddressEveryElementOnce() {
    // The offset n*s0 + c*s1 + h*s2 + w*s3 must walk 0, 1, 2, ... in NCHW order.
    Nchw shape = new Nchw(2, 3, 2, 3);
    int[] s = shape.strides();
    int expected = 0;
    for (int n = 0; n < shape.n(); n++) {
      for (int c = 0; c < shape.c(); c++) {
        for (int h = 0; h < shape.h(); h++) {
          for (int w = 0; w < shape.w(); w++) {
            assertEquals(expected, n * s[0] + c * s[1] + h * s[2] + w * s[3]);
            expected++;
          }
        }
      }
    }
  }

  @Test
  void batchNormParametersArePerChannel() {
    assertEquals(new Nchw(1, 64, 1, 1), CudnnShapes.batchNormParameters(new Nchw(8, 64, 7, 7)));
  }

  @Test
  void flatShapeForElementwiseCalls() {
    assertEquals(new Nchw(1, 1, 1, 1000), Nchw.flat(1000));
  }

  @Test
  void nchwRejectsInvalidSizes() {
    IllegalArgumentException zero =
        assertThrows(IllegalArgumentException.class, () -> new Nchw(1, 0, 2, 2));
    assertTrue(zero.getMessage().contains("[1, 0, 2, 2]"), zero.getMessage());

    IllegalArgumentException large =
        assertThrows(IllegalArgumentException.class, () -> new Nchw(65536, 65536, 1, 1));
    assertTrue(large.getMessage().contains("4294967296 elements"), large.getMessage());
  }
}
