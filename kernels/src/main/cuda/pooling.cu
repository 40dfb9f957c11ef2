// 2d max and average pooling on NCHW float32 data, with the semantics of kiln's CPU pooling
// (Pool2dKernels), which are PyTorch's MaxPool2d and AvgPool2d defaults: floor-mode output sizes
// and no dilation.
//
// Shapes: x and gradX are [batch, channels, inHeight, inWidth], and y, gradY and argmax are [batch,
// channels, outHeight, outWidth], contiguous row-major, with
//   outHeight = (inHeight + 2 padHeight - kernelHeight) / strideHeight + 1
// and outWidth likewise. Window (oy, ox) covers input rows oy * strideHeight - padHeight + [0,
// kernelHeight) and the matching columns. Callers check, as Pool2dGeometry does, that both output
// sizes are at least 1 and that padding is at most half the kernel, so every window contains at
// least one input element. Every tensor must have fewer than 2^31 elements.
//
// Every kernel walks its outputs with a 1d grid-stride loop, so any 1d grid and block work. A grid
// of ceil(outputs / blockDim.x) blocks of 256 threads gives each thread one output. None uses
// shared memory. Each thread writes only its own outputs, and the backward kernels gather per input
// pixel instead of scattering per window, so there are no atomics and results are deterministic.

#include "kiln_cuda.h"

// Output size along one axis, in floor mode.
static __device__ __forceinline__ int pool_output_size(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// Computes the range [first, end) of windows along one axis that contain input index i. Window o
// covers [o * stride - pad, o * stride - pad + kernel), so it contains i when o * stride <= i + pad
// and o * stride > i + pad - kernel, which gives o in [ceil((i + pad - kernel + 1) / stride),
// floor((i + pad) / stride)], clipped to [0, outSize).
static __device__ __forceinline__ void pool_windows_containing(int i, int kernel, int stride,
                                                               int pad, int outSize, int* first,
                                                               int* end) {
  int low = i + pad - kernel + 1;
  // Ceiling division for a possibly negative numerator. low <= 0 means window 0 is the first.
  *first = low <= 0 ? 0 : (low + stride - 1) / stride;
  *end = min((i + pad) / stride + 1, outSize);
}

// Max pooling forward: y[o] = the maximum of window o, and argmax[o] = the flat index into x (over
// the whole batch, as the CPU kernel stores it) of the element chosen.
//
// Padding counts as minus infinity and is never chosen. Ties go to the first maximum in row-major
// window order, because the comparison is a strict >. A NaN beats every value, so NaN propagates,
// and among several NaNs the last one in window order wins. This matches the CPU kernel exactly.
extern "C" __global__ void kiln_pool_max_forward(const float* __restrict__ x,
                                                 float* __restrict__ y, int* __restrict__ argmax,
                                                 int batch, int channels, int inHeight,
                                                 int inWidth, int kernelHeight, int kernelWidth,
                                                 int strideHeight, int strideWidth, int padHeight,
                                                 int padWidth) {
  int outHeight = pool_output_size(inHeight, kernelHeight, strideHeight, padHeight);
  int outWidth = pool_output_size(inWidth, kernelWidth, strideWidth, padWidth);
  long long outputs = (long long)batch * channels * outHeight * outWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < outputs; o += step) {
    int ox = (int)(o % outWidth);
    int oy = (int)((o / outWidth) % outHeight);
    long long plane = o / ((long long)outWidth * outHeight);
    long long planeStart = plane * inHeight * inWidth;

    // Clip the window to the input. The clipped window is never empty (see the file comment).
    int y0 = max(0, oy * strideHeight - padHeight);
    int y1 = min(inHeight, oy * strideHeight - padHeight + kernelHeight);
    int x0 = max(0, ox * strideWidth - padWidth);
    int x1 = min(inWidth, ox * strideWidth - padWidth + kernelWidth);

    long long best = planeStart + (long long)y0 * inWidth + x0;
    float bestValue = x[best];
    for (int iy = y0; iy < y1; iy++) {
      for (int ix = x0; ix < x1; ix++) {
        long long index = planeStart + (long long)iy * inWidth + ix;
        float value = x[index];
        // value != value is true only for NaN, which takes over as in the CPU kernel.
        if (value > bestValue || value != value) {
          bestValue = value;
          best = index;
        }
      }
    }
    y[o] = bestValue;
    argmax[o] = (int)best;
  }
}
KILN_REGISTER(kiln_pool_max_forward)

// Max pooling backward: gradX[i] = the sum of gradY[o] over the windows o that chose element i
// (argmax[o] == i), and 0 for elements no window chose.
//
// One thread per input pixel (grid-stride over batch * channels * inHeight * inWidth). Windows may
// overlap when the stride is smaller than the kernel, so several windows can choose the same
// pixel. A scatter over windows would then need atomicAdd, whose order, and so whose float
// rounding, varies from run to run. Instead each thread visits only the windows that contain its
// pixel, in row-major order, and adds the gradients of those that chose it: the order in which the
// CPU reference loop adds them.
extern "C" __global__ void kiln_pool_max_backward(const float* __restrict__ gradY,
                                                  const int* __restrict__ argmax,
                                                  float* __restrict__ gradX, int batch,
                                                  int channels, int inHeight, int inWidth,
                                                  int kernelHeight, int kernelWidth,
                                                  int strideHeight, int strideWidth,
                                                  int padHeight, int padWidth) {
  int outHeight = pool_output_size(inHeight, kernelHeight, strideHeight, padHeight);
  int outWidth = pool_output_size(inWidth, kernelWidth, strideWidth, padWidth);
  long long pixels = (long long)batch * channels * inHeight * inWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels; p += step) {
    int ix = (int)(p % inWidth);
    int iy = (int)((p / inWidth) % inHeight);
    long long plane = p / ((long long)inWidth * inHeight);
    long long planeOutputs = plane * outHeight * outWidth;

    int oy0, oy1, ox0, ox1;
    pool_windows_containing(iy, kernelHeight, strideHeight, padHeight, outHeight, &oy0, &oy1);
    pool_windows_containing(ix, kernelWidth, strideWidth, padWidth, outWidth, &ox0, &ox1);

    float sum = 0.0f;
    for (int oy = oy0; oy < oy1; oy++) {
      for (int ox = ox0; ox < ox1; ox++) {
        long long o = planeOutputs + (long long)oy * outWidth + ox;
        if (argmax[o] == p) {
          sum += gradY[o];
        }
      }
    }
    gradX[p] = sum;
  }
}
KILN_REGISTER(kiln_pool_max_backward)

// Returns the divisor of window (oy, ox): kernelHeight * kernelWidth when countIncludePad is
// nonzero (PyTorch's count_include_pad=True, the only mode of kiln's CPU kernel), else the number
// of window elements inside the input. In floor mode with pad <= kernel / 2 no window reaches past
// the padding, so the first case is always the full kernel area.
static __device__ __forceinline__ float pool_avg_divisor(int oy, int ox, int inHeight, int inWidth,
                                                         int kernelHeight, int kernelWidth,
                                                         int strideHeight, int strideWidth,
                                                         int padHeight, int padWidth,
                                                         int countIncludePad) {
  if (countIncludePad) {
    return (float)(kernelHeight * kernelWidth);
  }
  int y0 = max(0, oy * strideHeight - padHeight);
  int y1 = min(inHeight, oy * strideHeight - padHeight + kernelHeight);
  int x0 = max(0, ox * strideWidth - padWidth);
  int x1 = min(inWidth, ox * strideWidth - padWidth + kernelWidth);
  return (float)((y1 - y0) * (x1 - x0));
}

// Average pooling forward: y[o] = (sum of the input elements of window o) / divisor, where the
// padding adds zeros and the divisor is given by pool_avg_divisor. Pass countIncludePad = 1 for
// kiln's CPU semantics. The sum runs in float in row-major window order.
extern "C" __global__ void kiln_pool_avg_forward(const float* __restrict__ x,
                                                 float* __restrict__ y, int batch, int channels,
                                                 int inHeight, int inWidth, int kernelHeight,
                                                 int kernelWidth, int strideHeight,
                                                 int strideWidth, int padHeight, int padWidth,
                                                 int countIncludePad) {
  int outHeight = pool_output_size(inHeight, kernelHeight, strideHeight, padHeight);
  int outWidth = pool_output_size(inWidth, kernelWidth, strideWidth, padWidth);
  long long outputs = (long long)batch * channels * outHeight * outWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < outputs; o += step) {
    int ox = (int)(o % outWidth);
    int oy = (int)((o / outWidth) % outHeight);
    long long plane = o / ((long long)outWidth * outHeight);
    const float* planeInput = x + plane * inHeight * inWidth;

    int y0 = max(0, oy * strideHeight - padHeight);
    int y1 = min(inHeight, oy * strideHeight - padHeight + kernelHeight);
    int x0 = max(0, ox * strideWidth - padWidth);
    int x1 = min(inWidth, ox * strideWidth - padWidth + kernelWidth);
    float sum = 0.0f;
    for (int iy = y0; iy < y1; iy++) {
      for (int ix = x0; ix < x1; ix++) {
        sum += planeInput[iy * inWidth + ix];
      }
    }
    y[o] = sum / pool_avg_divisor(oy, ox, inHeight, inWidth, kernelHeight, kernelWidth,
                                  strideHeight, strideWidth, padHeight, padWidth,
                                  countIncludePad);
  }
}
KILN_REGISTER(kiln_pool_avg_forward)

// Average pooling backward: gradX[i] = sum over the windows o that contain element i of gradY[o] /
// divisor(o). The shares that fall on padding belong to no input element and are dropped.
//
// One thread per input pixel (grid-stride over batch * channels * inHeight * inWidth), gathering
// from the windows that contain it in row-major order, so no atomics are needed even when windows
// overlap.
extern "C" __global__ void kiln_pool_avg_backward(const float* __restrict__ gradY,
                                                  float* __restrict__ gradX, int batch,
                                                  int channels, int inHeight, int inWidth,
                                                  int kernelHeight, int kernelWidth,
                                                  int strideHeight, int strideWidth,
                                                  int padHeight, int padWidth,
                                                  int countIncludePad) {
  int outHeight = pool_output_size(inHeight, kernelHeight, strideHeight, padHeight);
  int outWidth = pool_output_size(inWidth, kernelWidth, strideWidth, padWidth);
  long long pixels = (long long)batch * channels * inHeight * inWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels; p += step) {
    int ix = (int)(p % inWidth);
    int iy = (int)((p / inWidth) % inHeight);
    long long plane = p / ((long long)inWidth * inHeight);
    const float* planeGrad = gradY + plane * outHeight * outWidth;

    int oy0, oy1, ox0, ox1;
    pool_windows_containing(iy, kernelHeight, strideHeight, padHeight, outHeight, &oy0, &oy1);
    pool_windows_containing(ix, kernelWidth, strideWidth, padWidth, outWidth, &ox0, &ox1);

    float sum = 0.0f;
    for (int oy = oy0; oy < oy1; oy++) {
      for (int ox = ox0; ox < ox1; ox++) {
        float divisor = pool_avg_divisor(oy, ox, inHeight, inWidth, kernelHeight, kernelWidth,
                                         strideHeight, strideWidth, padHeight, padWidth,
                                         countIncludePad);
        sum += planeGrad[oy * outWidth + ox] / divisor;
      }
    }
    gradX[p] = sum;
  }
}
KILN_REGISTER(kiln_pool_avg_backward)
