package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Shared parts of the tests that need a GPU: the check that skips them elsewhere, and a small
 * kernel in PTX, so that they do not depend on the kernels module's fatbin.
 */
final class GpuTestSupport {

  /**
   * PTX of {@code y[i] = a * x[i] + y[i]} for {@code i < n}, one thread per element, written for
   * PTX ISA 7.0 so that any driver from CUDA 11 on compiles it. The equivalent CUDA C:
   *
   * <pre>{@code
   * extern "C" __global__ void scale_add(float* y, const float* x, float a, int n) {
   *   int i = blockIdx.x * blockDim.x + threadIdx.x;
   *   if (i < n) y[i] = a * x[i] + y[i];
   * }
   * }</pre>
   */
  static final String SCALE_ADD_PTX =
      """
      .version 7.0
      .target sm_75
      .address_size 64

      .visible .entry scale_add(
        .param .u64 y_param,
        .param .u64 x_param,
        .param .f32 a_param,
        .param .u32 n_param
      )
      {
        .reg .pred %outside;
        .reg .f32 %a, %x, %y;
        .reg .b32 %i, %n, %block, %width, %thread;
        .reg .b64 %y_ptr, %x_ptr, %offset;

        ld.param.u64 %y_ptr, [y_param];
        ld.param.u64 %x_ptr, [x_param];
        ld.param.f32 %a, [a_param];
        ld.param.u32 %n, [n_param];
        mov.u32 %block, %ctaid.x;
        mov.u32 %width, %ntid.x;
        mov.u32 %thread, %tid.x;
        mad.lo.s32 %i, %block, %width, %thread;
        setp.ge.s32 %outside, %i, %n;
        @%outside bra DONE;

        cvta.to.global.u64 %y_ptr, %y_ptr;
        cvta.to.global.u64 %x_ptr, %x_ptr;
        mul.wide.s32 %offset, %i, 4;
        add.s64 %x_ptr, %x_ptr, %offset;
        add.s64 %y_ptr, %y_ptr, %offset;
        ld.global.f32 %x, [%x_ptr];
        ld.global.f32 %y, [%y_ptr];
        fma.rn.f32 %y, %a, %x, %y;
        st.global.f32 [%y_ptr], %y;

      DONE:
        ret;
      }
      """;

  private GpuTestSupport() {}

  /** Returns the PTX as the driver takes it: ASCII text that ends in a 0 byte. */
  static byte[] scaleAddImage() {
    byte[] text = SCALE_ADD_PTX.getBytes(StandardCharsets.US_ASCII);
    return Arrays.copyOf(text, text.length + 1);
  }

  /** The check of {@code cuda:0}, made once for all GPU tests. */
  private static CudaAvailability availability;

  /** Context of {@code cuda:0} once opened, which stays open for the whole test run. */
  private static CudaContext context;

  /** The module of {@link #scaleAddImage()}, loaded with the context. */
  private static CudaModule testKernels;

  /**
   * Returns the shared context of {@code cuda:0} with the test kernel loaded, or skips the calling
   * test, with the check's reason, where that device is not usable. The kernels module's fatbin is
   * not required, because these tests load their own PTX.
   */
  static synchronized CudaContext contextOrSkip() {
    if (availability == null) {
      availability =
          CudaAvailability.check(0, new DriverProbe.Real(), GpuTestSupport::scaleAddImage, 30_000);
    }
    assumeTrue(availability.usable(), "GPU test skipped: " + availability.message());
    if (context == null) {
      context = CudaContext.of(0);
      testKernels = context.module("GPU test kernels", scaleAddImage());
    }
    return context;
  }

  /**
   * Returns the module of the test kernel {@code scale_add}, or skips the calling test where {@code
   * cuda:0} is not usable.
   */
  static synchronized CudaModule testKernelsOrSkip() {
    contextOrSkip();
    return testKernels;
  }
}
