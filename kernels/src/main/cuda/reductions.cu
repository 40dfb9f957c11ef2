// Reductions over chosen dimensions of a row-major float32 tensor: sum, mean, variance, and the
// maximum along one dimension with its position.
//
// A reduction is described as kiln's Reductions (dev.kiln.core.ops) describe it: the input shape
// and a flag per dimension that marks whether it is reduced. The output has the input's shape with
// every reduced dimension set to 1, in row-major order, which is also the order with those
// dimensions removed. shape and reduced are `rank` ints each, in device memory.
//
// Every kernel here runs one block per output element. The block's threads stride over that
// output's reduced elements, each keeping a private partial result, and then combine the
// partials: first within each warp by shuffles, then across the warps through shared memory. The
// combination runs in a fixed order, so results are the same on every run. Sums accumulate in
// float (kiln's CPU reference uses double), which the tests allow for.

#include "kiln_cuda.h"

// Sums value over the block and returns the total to every thread. The block size must be a
// multiple of 32 (at most 1024). warpTotals is the caller's __shared__ float[32]. The steps are
// those of batchnorm_block_sum2 in batchnorm.cu:
//   1. each warp adds its 32 lanes with __shfl_down_sync, which leaves the warp's sum in lane 0
//      only (the other lanes hold partial sums);
//   2. lane 0 of each warp stores it, and a barrier makes the per-warp sums visible;
//   3. every warp loads all per-warp sums and adds them with __shfl_xor_sync, which leaves the
//      total in every lane, so no thread has to store the total and no barrier has to publish it.
// The final barrier only stops a following call from overwriting warpTotals while a warp still
// reads it.
static __device__ __forceinline__ float reductions_block_sum(float value, float* warpTotals) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  if (lane == 0) {
    warpTotals[warp] = value;
  }
  __syncthreads();

  // Step 3: every warp adds up the per-warp sums, zero past the number of warps.
  int warps = blockDim.x / 32;
  float total = lane < warps ? warpTotals[lane] : 0.0f;
  for (int offset = 16; offset > 0; offset >>= 1) {
    total += __shfl_xor_sync(0xffffffffu, total, offset);
  }
  __syncthreads();
  return total;
}

// Returns the offset of output element `output` in the input, with every reduced index at 0, and
// writes the number of reduced elements to *count.
static __device__ __forceinline__ long long reductions_output_base(const int* shape,
                                                                   const int* reduced, int rank,
                                                                   long long output,
                                                                   long long* count) {
  long long base = 0;
  long long stride = 1;
  *count = 1;
  for (int d = rank - 1; d >= 0; d--) {
    if (reduced[d]) {
      *count *= shape[d];
    } else {
      base += (output % shape[d]) * stride;
      output /= shape[d];
    }
    stride *= shape[d];
  }
  return base;
}

// Returns the input offset, relative to an output's base, of that output's reduced element r:
// r is split into indices over the reduced dimensions only, last dimension fastest.
static __device__ __forceinline__ long long reductions_reduced_offset(const int* shape,
                                                                     const int* reduced,
                                                                     int rank, long long r) {
  long long offset = 0;
  long long stride = 1;
  for (int d = rank - 1; d >= 0; d--) {
    if (reduced[d]) {
      offset += (r % shape[d]) * stride;
      r /= shape[d];
    }
    stride *= shape[d];
  }
  return offset;
}

// out[o] = scale * (sum of x over output o's reduced elements). scale = 1 gives the sum, and
// scale = 1 / count gives the mean (computed by the caller from the shape). A reduction
// over no elements writes 0 * scale.
//
// Launch: grid.x = number of output elements, 1d block of a multiple of 32 threads (256 is a good
// default, or fewer when each output has few elements). No dynamic shared memory. rank >= 1.
extern "C" __global__ void kiln_reductions_sum(const float* __restrict__ x,
                                               float* __restrict__ out, const int* shape,
                                               const int* reduced, int rank, float scale) {
  __shared__ float warpTotals[32];
  long long count;
  long long base = reductions_output_base(shape, reduced, rank, blockIdx.x, &count);

  float partial = 0.0f;
  for (long long r = threadIdx.x; r < count; r += blockDim.x) {
    partial += x[base + reductions_reduced_offset(shape, reduced, rank, r)];
  }
  float total = reductions_block_sum(partial, warpTotals);
  if (threadIdx.x == 0) {
    out[blockIdx.x] = total * scale;
  }
}
KILN_REGISTER(kiln_reductions_sum)

// out[o] = the variance of x over output o's reduced elements: the mean squared deviation from
// their mean, divided by count - 1 instead of count when `unbiased` is nonzero (Bessel's
// correction). Two passes, the mean first, avoid the cancellation of sum(x^2) - sum(x)^2 / n. With
// count - 1 = 0 the result is 0/0 = NaN, as on the CPU.
//
// Launch: as kiln_reductions_sum.
extern "C" __global__ void kiln_reductions_variance(const float* __restrict__ x,
                                                    float* __restrict__ out, const int* shape,
                                                    const int* reduced, int rank, int unbiased) {
  __shared__ float warpTotals[32];
  long long count;
  long long base = reductions_output_base(shape, reduced, rank, blockIdx.x, &count);

  float partial = 0.0f;
  for (long long r = threadIdx.x; r < count; r += blockDim.x) {
    partial += x[base + reductions_reduced_offset(shape, reduced, rank, r)];
  }
  float mean = reductions_block_sum(partial, warpTotals) / (float)count;

  float squares = 0.0f;
  for (long long r = threadIdx.x; r < count; r += blockDim.x) {
    float deviation = x[base + reductions_reduced_offset(shape, reduced, rank, r)] - mean;
    squares += deviation * deviation;
  }
  float total = reductions_block_sum(squares, warpTotals);
  if (threadIdx.x == 0) {
    out[blockIdx.x] = total / (float)(unbiased ? count - 1 : count);
  }
}
KILN_REGISTER(kiln_reductions_variance)

// True when candidate (value, index) beats the current best under the CPU's rule: a NaN beats
// every number, a larger value beats a smaller one, and on ties (two NaNs included) the lower
// index wins. This order is associative, so partial maxima may be combined in any grouping.
static __device__ __forceinline__ bool reductions_beats(float value, int index, float best,
                                                        int bestIndex) {
  bool valueNan = value != value;
  bool bestNan = best != best;
  if (valueNan != bestNan) {
    return valueNan;
  }
  if (!valueNan && value != best) {
    return value > best;
  }
  return index < bestIndex;
}

// The maximum along one dimension. The input is viewed as [outer, length, inner], where length is
// the size of the reduced dimension. values[o * inner + i] and indices[o * inner + i] receive the
// maximum of x[o, :, i] and its position along that dimension.
//
// Launch: grid.x >= outer * inner (one block per output), 1d block of a multiple of 32 threads.
// No dynamic shared memory. length >= 1.
extern "C" __global__ void kiln_reductions_max(const float* __restrict__ x,
                                               float* __restrict__ values,
                                               int* __restrict__ indices, int outer, int length,
                                               int inner) {
  __shared__ float warpValues[32];
  __shared__ int warpIndices[32];
  long long output = blockIdx.x;
  if (output >= (long long)outer * inner) {
    return;  // a spare block of an oversized grid; the whole block leaves, so no barrier breaks
  }
  long long base = (output / inner) * length * (long long)inner + output % inner;

  // Each thread scans positions threadIdx.x, threadIdx.x + blockDim.x, ... in increasing order,
  // so its own ties already resolve to the lower index. Threads past the end hold -infinity at
  // index `length`, which loses to every real element.
  float best = -INFINITY;
  int bestIndex = length;
  for (int k = threadIdx.x; k < length; k += blockDim.x) {
    float value = x[base + (long long)k * inner];
    if (reductions_beats(value, k, best, bestIndex)) {
      best = value;
      bestIndex = k;
    }
  }

  for (int offset = 16; offset > 0; offset >>= 1) {
    float otherValue = __shfl_down_sync(0xffffffffu, best, offset);
    int otherIndex = __shfl_down_sync(0xffffffffu, bestIndex, offset);
    if (reductions_beats(otherValue, otherIndex, best, bestIndex)) {
      best = otherValue;
      bestIndex = otherIndex;
    }
  }
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  if (lane == 0) {
    warpValues[warp] = best;
    warpIndices[warp] = bestIndex;
  }
  __syncthreads();

  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)blockDim.x / 32; w++) {
      if (reductions_beats(warpValues[w], warpIndices[w], best, bestIndex)) {
        best = warpValues[w];
        bestIndex = warpIndices[w];
      }
    }
    values[output] = best;
    indices[output] = bestIndex;
  }
}
KILN_REGISTER(kiln_reductions_max)
