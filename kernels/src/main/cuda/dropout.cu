// Inverted dropout on float32 data, with a counter-based random number generator.
//
// Semantics, as in kiln's CPU Dropout op: element i is dropped with probability p, and the mask is
// mask[i] = 0 for a dropped element and 1 / (1 - p) for a kept one (0 when p = 1, where every
// element is dropped). Then y = x * mask and gradX = gradY * mask. Multiplying by the mask, rather
// than writing 0 for dropped elements, keeps the CPU's behaviour on infinite and NaN inputs
// (0 * inf is NaN there too).
//
// The generator. Element i draws the 64-bit number
//   z(i) = mix64(seed + (offset + i + 1) * GAMMA),   GAMMA = 0x9e3779b97f4a7c15,
// where mix64 is the SplitMix64 finalizer (two xor-shift-multiply rounds, then an xor-shift). This
// is exactly the (offset + i)-th value of nextLong() from java.util.SplittableRandom seeded with
// seed. That class adds GAMMA to its state before each output and returns mix64 of the state
// (JDK 25 source), so Java code can reproduce every mask. The uniform number u(i) is the top 24
// bits of z(i) scaled to [0, 1), which a float represents exactly, and element i is dropped when
// u(i) < p.
//
// Why counter-based: z(i) depends only on (seed, offset, i), not on which thread or block computes
// it. So the mask is the same for every launch shape, threads need no generator state, and the
// backward pass can regenerate the mask from the seed instead of storing it. A caller that runs
// several dropouts from one seed advances the offset by the element count of each, so no two
// draw the same numbers. Two different seeds give the same sequence shifted by (seed2 - seed1) /
// GAMMA positions, modulo 2^64, where GAMMA is invertible because it is odd. For seeds that differ
// by at most 10^6, that shift is at least 8.69e12 positions, far beyond any tensor size.
//
// Launch, for both kernels: 1d grid and block of any size, no shared memory. Threads walk the n
// elements with a grid-stride loop, and ceil(n / blockDim.x) blocks give each thread one element.
// Each thread writes only its own elements. Preconditions: 0 <= p <= 1 (the CPU op rejects other
// values) and n < 2^31.

#include "kiln_cuda.h"

// The SplitMix64 finalizer, as java.util.SplittableRandom.mix64 (variant 13 of Stafford's
// mixers): each round spreads high bits down with an xor-shift and low bits up with an odd
// multiply, so flipping any input bit flips about half of the output bits.
static __device__ __forceinline__ unsigned long long dropout_mix64(unsigned long long z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Returns u in [0, 1) for the counter-th draw of the sequence of seed, as the file comment explains.
// Unsigned arithmetic wraps modulo 2^64, as the Java longs it mirrors do.
static __device__ __forceinline__ float dropout_uniform(unsigned long long seed,
                                                        unsigned long long counter) {
  const unsigned long long gamma = 0x9e3779b97f4a7c15ULL;
  unsigned long long z = dropout_mix64(seed + (counter + 1ULL) * gamma);
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

// Returns the mask value of element i: 0 when dropped, else 1 / (1 - p).
static __device__ __forceinline__ float dropout_mask_value(long long i, float p,
                                                           unsigned long long seed,
                                                           unsigned long long offset) {
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  bool dropped = dropout_uniform(seed, offset + (unsigned long long)i) < p;
  return dropped ? 0.0f : scale;
}

// Forward: y[i] = x[i] * mask[i], and mask[i] is stored when the mask pointer is non-null (pass
// null to save memory and let kiln_dropout_backward regenerate it).
extern "C" __global__ void kiln_dropout_forward(const float* __restrict__ x, float* __restrict__ y,
                                                float* __restrict__ mask, int n, float p,
                                                unsigned long long seed,
                                                unsigned long long offset) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    float value = dropout_mask_value(i, p, seed, offset);
    y[i] = x[i] * value;
    if (mask != nullptr) {
      mask[i] = value;
    }
  }
}
KILN_REGISTER(kiln_dropout_forward)

// Backward: gradX[i] = gradY[i] * mask[i], with the mask regenerated from the same p, seed and
// offset that the forward launch used, so it matches the forward mask element for element.
extern "C" __global__ void kiln_dropout_backward(const float* __restrict__ gradY,
                                                 float* __restrict__ gradX, int n, float p,
                                                 unsigned long long seed,
                                                 unsigned long long offset) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    gradX[i] = gradY[i] * dropout_mask_value(i, p, seed, offset);
  }
}
KILN_REGISTER(kiln_dropout_backward)
