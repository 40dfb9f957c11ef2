// 2d convolution (cross-correlation, as in PyTorch) on NCHW float32 data, without groups.
//
// Shapes, all contiguous row-major:
//   input x      [batch, inChannels, inHeight, inWidth]
//   weight       [outChannels, inChannels, kernelHeight, kernelWidth]
//   bias         [outChannels]
//   output y     [batch, outChannels, outHeight, outWidth]
//   column       [batch, taps, positions], taps = inChannels * kernelHeight * kernelWidth and
//                positions = outHeight * outWidth: one column matrix per image, stacked.
// outHeight = (inHeight + 2 padHeight - dilationHeight (kernelHeight - 1) - 1) / strideHeight + 1,
// and outWidth likewise. Callers check that both are at least 1, as Conv2dGeometry does on the CPU.
//
// Kernel tap (ky, kx) of output pixel (oy, ox) reads input pixel
//   iy = oy * strideHeight - padHeight + ky * dilationHeight
//   ix = ox * strideWidth  - padWidth  + kx * dilationWidth
// and a tap that lands outside the input reads a zero of the padding.
//
// Two routes compute the same convolution:
//   - im2col + GEMM, with one batched matrix product per group of images, image b of the group
//     on its slices of x, y and column. DeviceMatmul runs each batch of two or more products in
//     one launch, with cuBLAS where it loaded, else with a tiled kernel of matmul.cu. A group of
//     one image is a single product, which DeviceMatmul may cut into slices of k. The products:
//       forward:        y[b] = weight [outChannels, taps] * column[b] [taps, positions]
//                       (m = outChannels, n = positions, k = taps, the weight's stride 0), then
//                       the bias;
//       input gradient: gradColumn[b] = weight^T * gradY[b] (transA = 1, m = taps,
//                       n = positions, k = outChannels), then one kiln_conv_col2im for the group;
//       weight gradient: gradWeight = the sum over b of gradY[b] * column[b]^T (transB = 1,
//                       m = outChannels, n = taps, k = positions per image), which
//                       DeviceBatchReduce computes as one sum over the group's positions in
//                       slices, and adds to the gradient of the groups before.
//   - direct kernels below, one thread (or block) per output element, with no scratch memory.
// Training takes cuDNN's convolutions where cuDNN loaded, else im2col + GEMM. The direct kernels
// run only in tests, as the reference that the other routes are checked against.
// Every kernel overwrites its output and none uses atomics, so results are deterministic.
// Sizes are int: every tensor, and the column matrix, must have fewer than 2^31 elements.

#include "kiln_cuda.h"

// Output size along one axis. The caller guarantees a non-negative numerator.
static __device__ __forceinline__ int conv_output_size(int in, int kernel, int stride, int pad,
                                                       int dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

// Returns the output index o along one axis whose tap k reads input index i, or -1 if none does.
// Tap k of output o reads i = o * stride - pad + k * dilation, so o = (i + pad - k * dilation) /
// stride, which must divide exactly and fall in [0, outSize).
static __device__ __forceinline__ int conv_source_output(int i, int k, int stride, int pad,
                                                         int dilation, int outSize) {
  int shifted = i + pad - k * dilation;
  if (shifted < 0 || shifted % stride != 0) {
    return -1;
  }
  int o = shifted / stride;
  return o < outSize ? o : -1;
}

// Sums value over a block whose size is a multiple of 32, and returns the total to every thread.
// warpSums is a __shared__ float[32] of the calling kernel. Each warp first sums its 32 lanes with
// shuffles. Then every warp reads the per-warp sums and adds them with butterfly (xor) shuffles,
// which leaves the same total in every lane of every warp without a broadcast step. The last
// barrier lets the caller reuse warpSums at once.
static __device__ __forceinline__ float conv_block_sum(float value, float* warpSums) {
  const unsigned full = 0xffffffffu;
  for (int delta = 16; delta > 0; delta >>= 1) {
    value += __shfl_down_sync(full, value, delta);
  }
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  if (lane == 0) {
    warpSums[warp] = value;
  }
  __syncthreads();

  int warps = blockDim.x / 32;
  float total = lane < warps ? warpSums[lane] : 0.0f;
  for (int delta = 16; delta > 0; delta >>= 1) {
    total += __shfl_xor_sync(full, total, delta);
  }
  __syncthreads();
  return total;
}

// Copies the images into their column matrices: column[b, (ic, ky, kx), (oy, ox)] = x[b, ic, iy,
// ix], or 0 where (iy, ix) falls in the padding.
//
// Launch: 1d grid and block of any size (256 threads is a good block), no shared memory. Threads
// walk the batch * taps * positions column entries with a grid-stride loop, so any grid covers
// them all. A grid of ceil(entries / blockDim.x) blocks gives each thread one entry.
// Each thread writes only its own column entries, so there are no races.
extern "C" __global__ void kiln_conv_im2col(const float* __restrict__ image,
                                            float* __restrict__ column, int batch, int channels,
                                            int height, int width, int kernelHeight,
                                            int kernelWidth, int strideHeight, int strideWidth,
                                            int padHeight, int padWidth, int dilationHeight,
                                            int dilationWidth) {
  int outHeight = conv_output_size(height, kernelHeight, strideHeight, padHeight, dilationHeight);
  int outWidth = conv_output_size(width, kernelWidth, strideWidth, padWidth, dilationWidth);
  long long positions = (long long)outHeight * outWidth;
  long long taps = (long long)channels * kernelHeight * kernelWidth;
  long long entries = batch * taps * positions;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < entries; e += step) {
    // Decode e = ((b * taps + row) * outHeight + oy) * outWidth + ox, with row = (ic * kernelHeight
    // + ky) * kernelWidth + kx, from the fastest-varying index outwards.
    int ox = (int)(e % outWidth);
    int oy = (int)((e / outWidth) % outHeight);
    long long row = (e / positions) % taps;
    int b = (int)(e / (positions * taps));
    int kx = (int)(row % kernelWidth);
    int ky = (int)((row / kernelWidth) % kernelHeight);
    int ic = (int)(row / ((long long)kernelWidth * kernelHeight));

    int iy = oy * strideHeight - padHeight + ky * dilationHeight;
    int ix = ox * strideWidth - padWidth + kx * dilationWidth;
    bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
    column[e] = inside ? image[(((long long)b * channels + ic) * height + iy) * width + ix] : 0.0f;
  }
}
KILN_REGISTER(kiln_conv_im2col)

// Overwrites the images with the adjoint of im2col: image[b, ic, iy, ix] = the sum of every column
// entry that im2col copies from that pixel. Entries that im2col filled from the padding are
// dropped. This turns gradColumn = weight^T * gradY into the input gradient.
//
// Launch: 1d grid and block of any size, grid-stride over the batch * channels * height * width
// pixels (one pixel per thread with ceil(pixels / blockDim.x) blocks). No shared memory.
// Each thread gathers the contributions to its own pixel: for each tap (ky, kx) at most one output
// position (oy, ox) read this pixel through that tap (see conv_source_output). Because no two
// threads write the same pixel, col2im needs no atomics, and the sum runs in a fixed order (ky,
// then kx), so the result is the same on every run.
extern "C" __global__ void kiln_conv_col2im(const float* __restrict__ column,
                                            float* __restrict__ image, int batch, int channels,
                                            int height, int width, int kernelHeight,
                                            int kernelWidth, int strideHeight, int strideWidth,
                                            int padHeight, int padWidth, int dilationHeight,
                                            int dilationWidth) {
  int outHeight = conv_output_size(height, kernelHeight, strideHeight, padHeight, dilationHeight);
  int outWidth = conv_output_size(width, kernelWidth, strideWidth, padWidth, dilationWidth);
  long long positions = (long long)outHeight * outWidth;
  long long taps = (long long)channels * kernelHeight * kernelWidth;
  long long pixels = (long long)batch * channels * height * width;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels; p += step) {
    int ix = (int)(p % width);
    int iy = (int)((p / width) % height);
    int ic = (int)((p / ((long long)width * height)) % channels);
    int b = (int)(p / ((long long)width * height * channels));

    const float* imageColumns = column + (long long)b * taps * positions;
    float sum = 0.0f;
    for (int ky = 0; ky < kernelHeight; ky++) {
      int oy = conv_source_output(iy, ky, strideHeight, padHeight, dilationHeight, outHeight);
      if (oy < 0) {
        continue;
      }
      for (int kx = 0; kx < kernelWidth; kx++) {
        int ox = conv_source_output(ix, kx, strideWidth, padWidth, dilationWidth, outWidth);
        if (ox < 0) {
          continue;
        }
        long long row = ((long long)ic * kernelHeight + ky) * kernelWidth + kx;
        sum += imageColumns[row * positions + (long long)oy * outWidth + ox];
      }
    }
    image[p] = sum;
  }
}
KILN_REGISTER(kiln_conv_col2im)

// Direct convolution: y[b, oc, oy, ox] = bias[oc] + sum over (ic, ky, kx) of weight[oc, ic, ky,
// kx] * x[b, ic, iy, ix], with zeros outside the input. bias may be null for no bias.
//
// Launch: 1d grid and block of any size, grid-stride over the batch * outChannels * outHeight *
// outWidth outputs. No shared memory. Each thread computes and writes its own outputs, summing in
// float in the order (ic, ky, kx). This is the simple teaching version: every thread rereads its
// input patch from global memory, which im2col + the tiled GEMM avoid.
extern "C" __global__ void kiln_conv_forward_direct(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int batch, int inChannels, int inHeight, int inWidth, int outChannels,
    int kernelHeight, int kernelWidth, int strideHeight, int strideWidth, int padHeight,
    int padWidth, int dilationHeight, int dilationWidth) {
  int outHeight = conv_output_size(inHeight, kernelHeight, strideHeight, padHeight, dilationHeight);
  int outWidth = conv_output_size(inWidth, kernelWidth, strideWidth, padWidth, dilationWidth);
  long long outputs = (long long)batch * outChannels * outHeight * outWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < outputs; o += step) {
    int ox = (int)(o % outWidth);
    int oy = (int)((o / outWidth) % outHeight);
    int oc = (int)((o / ((long long)outWidth * outHeight)) % outChannels);
    int b = (int)(o / ((long long)outWidth * outHeight * outChannels));

    float sum = bias != nullptr ? bias[oc] : 0.0f;
    for (int ic = 0; ic < inChannels; ic++) {
      const float* plane = x + ((long long)b * inChannels + ic) * inHeight * inWidth;
      const float* filter = weight + ((long long)oc * inChannels + ic) * kernelHeight * kernelWidth;
      for (int ky = 0; ky < kernelHeight; ky++) {
        int iy = oy * strideHeight - padHeight + ky * dilationHeight;
        if (iy < 0 || iy >= inHeight) {
          continue;
        }
        for (int kx = 0; kx < kernelWidth; kx++) {
          int ix = ox * strideWidth - padWidth + kx * dilationWidth;
          if (ix >= 0 && ix < inWidth) {
            sum += filter[ky * kernelWidth + kx] * plane[iy * inWidth + ix];
          }
        }
      }
    }
    y[o] = sum;
  }
}
KILN_REGISTER(kiln_conv_forward_direct)

// Direct input gradient: gradX[b, ic, iy, ix] = sum over (oc, ky, kx) of weight[oc, ic, ky, kx] *
// gradY[b, oc, oy, ox], over the output positions (oy, ox) whose tap (ky, kx) read (iy, ix).
//
// Launch: 1d grid and block of any size, grid-stride over the batch * inChannels * inHeight *
// inWidth input pixels. No shared memory. Like col2im, each thread gathers into its own pixel in a
// fixed order (oc, ky, kx), so there are no atomics and no races.
extern "C" __global__ void kiln_conv_backward_data_direct(
    const float* __restrict__ gradY, const float* __restrict__ weight,
    float* __restrict__ gradX, int batch, int inChannels, int inHeight, int inWidth,
    int outChannels, int kernelHeight, int kernelWidth, int strideHeight, int strideWidth,
    int padHeight, int padWidth, int dilationHeight, int dilationWidth) {
  int outHeight = conv_output_size(inHeight, kernelHeight, strideHeight, padHeight, dilationHeight);
  int outWidth = conv_output_size(inWidth, kernelWidth, strideWidth, padWidth, dilationWidth);
  long long pixels = (long long)batch * inChannels * inHeight * inWidth;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pixels; p += step) {
    int ix = (int)(p % inWidth);
    int iy = (int)((p / inWidth) % inHeight);
    int ic = (int)((p / ((long long)inWidth * inHeight)) % inChannels);
    int b = (int)(p / ((long long)inWidth * inHeight * inChannels));

    float sum = 0.0f;
    for (int oc = 0; oc < outChannels; oc++) {
      const float* gradPlane = gradY + ((long long)b * outChannels + oc) * outHeight * outWidth;
      const float* filter = weight + ((long long)oc * inChannels + ic) * kernelHeight * kernelWidth;
      for (int ky = 0; ky < kernelHeight; ky++) {
        int oy = conv_source_output(iy, ky, strideHeight, padHeight, dilationHeight, outHeight);
        if (oy < 0) {
          continue;
        }
        for (int kx = 0; kx < kernelWidth; kx++) {
          int ox = conv_source_output(ix, kx, strideWidth, padWidth, dilationWidth, outWidth);
          if (ox >= 0) {
            sum += filter[ky * kernelWidth + kx] * gradPlane[oy * outWidth + ox];
          }
        }
      }
    }
    gradX[p] = sum;
  }
}
KILN_REGISTER(kiln_conv_backward_data_direct)

// Direct weight gradient: gradW[oc, ic, ky, kx] = sum over (b, oy, ox) of gradY[b, oc, oy, ox] *
// x[b, ic, iy, ix], with zeros for taps in the padding.
//
// Launch: one block per weight element, in a 1d grid of any size. A grid smaller than the
// outChannels * inChannels * kernelHeight * kernelWidth elements makes each block stride over
// several. blockDim.x is a multiple of 32, at most 1024 (256 is a good choice), and there is no
// dynamic shared memory.
// The block's threads split the batch * outHeight * outWidth terms of one weight element, and
// conv_block_sum adds their partial sums in a fixed tree, so the result does not depend on timing.
// Thread 0 writes the element. All threads of a block run the same number of loop iterations, so
// every thread reaches every barrier.
extern "C" __global__ void kiln_conv_backward_weight_direct(
    const float* __restrict__ gradY, const float* __restrict__ x, float* __restrict__ gradW,
    int batch, int inChannels, int inHeight, int inWidth, int outChannels, int kernelHeight,
    int kernelWidth, int strideHeight, int strideWidth, int padHeight, int padWidth,
    int dilationHeight, int dilationWidth) {
  __shared__ float warpSums[32];
  int outHeight = conv_output_size(inHeight, kernelHeight, strideHeight, padHeight, dilationHeight);
  int outWidth = conv_output_size(inWidth, kernelWidth, strideWidth, padWidth, dilationWidth);
  int positions = outHeight * outWidth;
  long long terms = (long long)batch * positions;
  long long weights = (long long)outChannels * inChannels * kernelHeight * kernelWidth;

  for (long long w = blockIdx.x; w < weights; w += gridDim.x) {
    int kx = (int)(w % kernelWidth);
    int ky = (int)((w / kernelWidth) % kernelHeight);
    int ic = (int)((w / ((long long)kernelWidth * kernelHeight)) % inChannels);
    int oc = (int)(w / ((long long)kernelWidth * kernelHeight * inChannels));

    float partial = 0.0f;
    for (long long t = threadIdx.x; t < terms; t += blockDim.x) {
      int b = (int)(t / positions);
      int position = (int)(t % positions);
      int oy = position / outWidth;
      int ox = position % outWidth;
      int iy = oy * strideHeight - padHeight + ky * dilationHeight;
      int ix = ox * strideWidth - padWidth + kx * dilationWidth;
      if (iy >= 0 && iy < inHeight && ix >= 0 && ix < inWidth) {
        float g = gradY[((long long)b * outChannels + oc) * positions + position];
        partial += g * x[(((long long)b * inChannels + ic) * inHeight + iy) * inWidth + ix];
      }
    }

    float total = conv_block_sum(partial, warpSums);
    if (threadIdx.x == 0) {
      gradW[w] = total;
    }
  }
}
KILN_REGISTER(kiln_conv_backward_weight_direct)

// Bias gradient: gradBias[oc] = sum over (b, oy, ox) of gradY[b, oc, oy, ox]. It serves both
// routes, because the bias never enters the GEMM.
//
// Launch: one block per output channel, in a 1d grid of any size (blocks stride over the channels
// when the grid is smaller). blockDim.x is a multiple of 32, at most 1024, and there is no dynamic
// shared memory. The block reduction is the one of kiln_conv_backward_weight_direct, so the result
// is deterministic.
extern "C" __global__ void kiln_conv_backward_bias(const float* __restrict__ gradY,
                                                   float* __restrict__ gradBias, int batch,
                                                   int outChannels, int positions) {
  __shared__ float warpSums[32];
  long long terms = (long long)batch * positions;

  for (int oc = blockIdx.x; oc < outChannels; oc += gridDim.x) {
    float partial = 0.0f;
    for (long long t = threadIdx.x; t < terms; t += blockDim.x) {
      long long b = t / positions;
      partial += gradY[(b * outChannels + oc) * positions + t % positions];
    }

    float total = conv_block_sum(partial, warpSums);
    if (threadIdx.x == 0) {
      gradBias[oc] = total;
    }
  }
}
KILN_REGISTER(kiln_conv_backward_bias)
