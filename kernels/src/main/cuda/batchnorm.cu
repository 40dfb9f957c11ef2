// Batch normalization on float32 data viewed as [n, c, s], with the semantics of kiln's CPU
// BatchNormKernels (which are PyTorch's): statistics are per channel, over the m = n * s values of
// that channel. For a 2d batch norm on NCHW data s = H * W, and for 1d on [N, C], s = 1. Element
// (i, ch, j) sits at index (i * c + ch) * s + j.
//
// gamma and beta (the affine weight and bias) may be null, meaning 1 and 0. So may runningMean,
// runningVar, gradGamma and gradBeta, which are then neither read nor written. The saved mean and
// inverse standard deviation that the training forward pass writes are what its backward pass
// reads. Every tensor must have fewer than 2^31 elements.
//
// The per-channel kernels run one block per channel and reduce with warp shuffles (see
// batchnorm_block_sum2). They sum in float, in a fixed tree for a given block size, so a launch
// gives the same bits on every run. A different block size may round differently.

#include "kiln_cuda.h"

// Sums two values over a block whose size is a multiple of 32 (at most 1024), and returns both
// totals to every thread. warpSums is a __shared__ float[2][32] of the calling kernel.
//
// Step 1: each warp adds its 32 lanes with __shfl_down_sync, leaving the warp's sum in lane 0.
// Step 2: lane 0 of each warp stores its sums, and a barrier makes them visible to the block.
// Step 3: every warp loads the per-warp sums (zero past the number of warps) and adds them with
// butterfly __shfl_xor_sync steps, after which every lane holds the block total. Every warp does
// the same additions in the same order, so all threads get identical bits.
// The final barrier keeps a following call from overwriting warpSums while a warp still reads it.
static __device__ __forceinline__ void batchnorm_block_sum2(float* first, float* second,
                                                            float (*warpSums)[32]) {
  const unsigned full = 0xffffffffu;
  float a = *first;
  float b = *second;
  for (int delta = 16; delta > 0; delta >>= 1) {
    a += __shfl_down_sync(full, a, delta);
    b += __shfl_down_sync(full, b, delta);
  }
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  if (lane == 0) {
    warpSums[0][warp] = a;
    warpSums[1][warp] = b;
  }
  __syncthreads();

  int warps = blockDim.x / 32;
  a = lane < warps ? warpSums[0][lane] : 0.0f;
  b = lane < warps ? warpSums[1][lane] : 0.0f;
  for (int delta = 16; delta > 0; delta >>= 1) {
    a += __shfl_xor_sync(full, a, delta);
    b += __shfl_xor_sync(full, b, delta);
  }
  __syncthreads();
  *first = a;
  *second = b;
}

// Returns the index of the t-th value of channel ch, for t in [0, n * s). The channel's values are
// counted sample by sample, t = i * s + j, so sample i = t / s and position j = t % s.
static __device__ __forceinline__ long long batchnorm_index(long long t, int ch, int c, int s) {
  return (t / s * c + ch) * s + t % s;
}

// Training forward: out = (x - mean) * invStd * gamma + beta, with the batch mean and biased
// variance of each channel and invStd = 1 / sqrt(biasedVar + eps). Writes saveMean[ch] and
// saveInvStd[ch] for the backward pass. Where they are non-null, it also updates the running
// statistics as PyTorch does: running = (1 - momentum) * running + momentum * batchStatistic, where the variance
// statistic is the unbiased biasedVar * m / (m - 1).
//
// Launch: one block per channel, in a 1d grid of any size (blocks stride over the channels when
// the grid is smaller). blockDim.x is a multiple of 32, at most 1024 (256 is a good choice), and
// there is no dynamic shared memory. Precondition: m = n * s >= 2, because the unbiased variance
// divides by m - 1 (the CPU side rejects m = 1 before it launches anything).
//
// The threads of a block stride over the m values of their channel three times: to sum x, to sum
// the squared deviations from the mean, and to write out. Two passes lose less precision than
// E[x^2] - E[x]^2 when the mean is large compared with the spread. Only thread 0 writes the
// per-channel outputs, so nothing races.
extern "C" __global__ void kiln_batchnorm_forward_training(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
    float* __restrict__ out, float* __restrict__ saveMean, float* __restrict__ saveInvStd,
    float* __restrict__ runningMean, float* __restrict__ runningVar, int n, int c, int s,
    float eps, float momentum) {
  __shared__ float warpSums[2][32];
  long long m = (long long)n * s;

  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float sum = 0.0f;
    float unused = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      sum += x[batchnorm_index(t, ch, c, s)];
    }
    batchnorm_block_sum2(&sum, &unused, warpSums);
    float mean = sum / (float)m;

    float squares = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      float d = x[batchnorm_index(t, ch, c, s)] - mean;
      squares += d * d;
    }
    batchnorm_block_sum2(&squares, &unused, warpSums);
    float biasedVar = squares / (float)m;
    // 1 / sqrtf rather than rsqrtf, whose GPU version is only approximate.
    float invStd = 1.0f / sqrtf(biasedVar + eps);

    float scale = invStd * (gamma != nullptr ? gamma[ch] : 1.0f);
    float shift = (beta != nullptr ? beta[ch] : 0.0f) - mean * scale;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      long long index = batchnorm_index(t, ch, c, s);
      out[index] = x[index] * scale + shift;
    }

    if (threadIdx.x == 0) {
      saveMean[ch] = mean;
      saveInvStd[ch] = invStd;
      if (runningMean != nullptr) {
        runningMean[ch] = (1.0f - momentum) * runningMean[ch] + momentum * mean;
      }
      if (runningVar != nullptr) {
        float unbiasedVar = biasedVar * ((float)m / (float)(m - 1));
        runningVar[ch] = (1.0f - momentum) * runningVar[ch] + momentum * unbiasedVar;
      }
    }
  }
}
KILN_REGISTER(kiln_batchnorm_forward_training)

// Evaluation forward: out = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta, with the
// running statistics as constants. runningMean and runningVar must be non-null here.
//
// Launch: 1d grid and block of any size, no shared memory. Threads walk the n * c * s elements
// with a grid-stride loop, and ceil(elements / blockDim.x) blocks give each thread one element.
// Each thread writes only its own elements.
extern "C" __global__ void kiln_batchnorm_forward_inference(
    const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ runningMean, const float* __restrict__ runningVar,
    float* __restrict__ out, int n, int c, int s, float eps) {
  long long elements = (long long)n * c * s;
  long long step = (long long)blockDim.x * gridDim.x;

  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < elements; i += step) {
    int ch = (int)((i / s) % c);
    float scale = (gamma != nullptr ? gamma[ch] : 1.0f) / sqrtf(runningVar[ch] + eps);
    float shift = (beta != nullptr ? beta[ch] : 0.0f) - runningMean[ch] * scale;
    out[i] = x[i] * scale + shift;
  }
}
KILN_REGISTER(kiln_batchnorm_forward_inference)

// Training backward, from the mean and invStd that kiln_batchnorm_forward_training saved. With
// xhat = (x - mean) * invStd:
//   gradGamma[ch] = sum(dy * xhat),  gradBeta[ch] = sum(dy),
//   dx = invStd * gamma / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
// The two sums appear in dx because the batch mean and variance depend on every x of the channel.
//
// Launch: as kiln_batchnorm_forward_training (one block per channel, blockDim.x a multiple of 32,
// at most 1024, no dynamic shared memory). The block sums both terms in one reduction and then
// writes dx in a second pass over the channel. Thread 0 writes gradGamma and gradBeta where
// non-null.
extern "C" __global__ void kiln_batchnorm_backward_training(
    const float* __restrict__ gradOut, const float* __restrict__ x,
    const float* __restrict__ gamma, const float* __restrict__ saveMean,
    const float* __restrict__ saveInvStd, float* __restrict__ gradInput,
    float* __restrict__ gradGamma, float* __restrict__ gradBeta, int n, int c, int s) {
  __shared__ float warpSums[2][32];
  long long m = (long long)n * s;

  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float mean = saveMean[ch];
    float invStd = saveInvStd[ch];
    float sumDy = 0.0f;
    float sumDyXhat = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      long long index = batchnorm_index(t, ch, c, s);
      float dy = gradOut[index];
      sumDy += dy;
      sumDyXhat += dy * (x[index] - mean) * invStd;
    }
    batchnorm_block_sum2(&sumDy, &sumDyXhat, warpSums);

    float factor = invStd * (gamma != nullptr ? gamma[ch] : 1.0f) / (float)m;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      long long index = batchnorm_index(t, ch, c, s);
      float xhat = (x[index] - mean) * invStd;
      gradInput[index] = factor * ((float)m * gradOut[index] - sumDy - xhat * sumDyXhat);
    }

    if (threadIdx.x == 0) {
      if (gradGamma != nullptr) {
        gradGamma[ch] = sumDyXhat;
      }
      if (gradBeta != nullptr) {
        gradBeta[ch] = sumDy;
      }
    }
  }
}
KILN_REGISTER(kiln_batchnorm_backward_training)

// Evaluation backward, where the running statistics are constants: with invStd = 1 /
// sqrt(runningVar + eps) and xhat = (x - runningMean) * invStd,
//   dx = dy * gamma * invStd,  gradGamma[ch] = sum(dy * xhat),  gradBeta[ch] = sum(dy).
//
// Launch: as kiln_batchnorm_forward_training (one block per channel, blockDim.x a multiple of 32,
// at most 1024, no dynamic shared memory). One pass writes dx and accumulates both sums, and thread 0
// writes gradGamma and gradBeta where non-null.
extern "C" __global__ void kiln_batchnorm_backward_inference(
    const float* __restrict__ gradOut, const float* __restrict__ x,
    const float* __restrict__ gamma, const float* __restrict__ runningMean,
    const float* __restrict__ runningVar, float* __restrict__ gradInput,
    float* __restrict__ gradGamma, float* __restrict__ gradBeta, int n, int c, int s, float eps) {
  __shared__ float warpSums[2][32];
  long long m = (long long)n * s;

  for (int ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float mean = runningMean[ch];
    float invStd = 1.0f / sqrtf(runningVar[ch] + eps);
    float scale = invStd * (gamma != nullptr ? gamma[ch] : 1.0f);
    float sumDy = 0.0f;
    float sumDyXhat = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
      long long index = batchnorm_index(t, ch, c, s);
      float dy = gradOut[index];
      gradInput[index] = dy * scale;
      sumDy += dy;
      sumDyXhat += dy * (x[index] - mean) * invStd;
    }
    batchnorm_block_sum2(&sumDy, &sumDyXhat, warpSums);

    if (threadIdx.x == 0) {
      if (gradGamma != nullptr) {
        gradGamma[ch] = sumDyXhat;
      }
      if (gradBeta != nullptr) {
        gradBeta[ch] = sumDy;
      }
    }
  }
}
KILN_REGISTER(kiln_batchnorm_backward_inference)
