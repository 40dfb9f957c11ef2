// The regression losses MSE, L1, SmoothL1 and Wing on float32 data, each a kernel that sums the
// loss and can write its gradient in the same pass, as kiln's CPU LossKernels
// (dev.kiln.core.backend.cpu) do.
//
// Every loss is a sum of f(d) over the elements, with d = x - t for prediction x and target t:
//   MSE       f(d) = d^2                                       f'(d) = 2d
//   L1        f(d) = |d|                                       f'(d) = sign(d)
//   SmoothL1  f(d) = 0.5 d^2 / beta where |d| < beta,          f'(d) = d / beta inside,
//                  = |d| - 0.5 beta elsewhere                          sign(d) elsewhere
//   Wing      f(d) = w ln(1 + |d| / epsilon) where |d| < w,     f'(d) = w sign(d) / (epsilon + |d|)
//                  = |d| - C elsewhere                                 inside, sign(d) elsewhere
//             with C = w - w ln(1 + w / epsilon)
// with sign(0) = 0, so the derivative at the kinks (d = 0 for L1 and Wing) is 0, as in PyTorch.
// SmoothL1 with beta = 0 is L1: the band |d| < 0 is empty, so no division by beta happens.
//
// Launch contract shared by every kernel here:
//   - 1d grid of any size, 1d block of a multiple of 32 threads (256 is a good default). Threads
//     walk the n elements with a grid-stride loop. No dynamic shared memory.
//   - partialSums receives gridDim.x floats: block b writes the sum of f(d) over the elements
//     its threads visited. The caller adds them up, for instance with kiln_reductions_sum over
//     one dimension, and divides by n for a mean. Per-block partial sums keep the result the
//     same on every run, which atomics would not.
//   - grad is either null or receives n floats: grad[i] = scale * f'(d[i]), the gradient with
//     respect to x for an upstream gradient `scale` (1/n for a mean). The gradient with respect
//     to t is its negation. grad may alias x or t, because each thread reads its inputs before it
//     writes the same index.
//   - Parameters are valid as the CPU checks them: beta >= 0, w > 0 and epsilon > 0, all finite.

#include "kiln_cuda.h"

static __device__ __forceinline__ float losses_sign(float d) {
  return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
}

// Each loss is a struct with value(d) and derivative(d), so one templated loop serves all four.
struct LossesSquared {
  __device__ float value(float d) const { return d * d; }
  __device__ float derivative(float d) const { return 2.0f * d; }
};

struct LossesAbsolute {
  __device__ float value(float d) const { return fabsf(d); }
  __device__ float derivative(float d) const { return losses_sign(d); }
};

struct LossesSmoothAbsolute {
  float beta;
  __device__ float value(float d) const {
    float magnitude = fabsf(d);
    return magnitude < beta ? 0.5f * d * d / beta : magnitude - 0.5f * beta;
  }
  __device__ float derivative(float d) const {
    return fabsf(d) < beta ? d / beta : losses_sign(d);
  }
};

struct LossesWing {
  float w;
  float epsilon;
  float offset;  // C, which makes the two pieces meet at |d| = w
  __device__ float value(float d) const {
    float magnitude = fabsf(d);
    // log1pf keeps the relative precision of ln(1 + u) for small u = |d| / epsilon.
    return magnitude < w ? w * log1pf(magnitude / epsilon) : magnitude - offset;
  }
  __device__ float derivative(float d) const {
    float magnitude = fabsf(d);
    return magnitude < w ? w * losses_sign(d) / (epsilon + magnitude) : losses_sign(d);
  }
};

// Sums loss.value over this thread's elements (writing gradients on the way), then over the
// block, and stores the block's sum in partialSums[blockIdx.x].
template <typename Loss>
static __device__ __forceinline__ void losses_run(const Loss& loss, const float* x,
                                                  const float* t, float* partialSums,
                                                  float* grad, int n, float scale) {
  __shared__ float warpSums[32];
  float sum = 0.0f;
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    float d = x[i] - t[i];
    sum += loss.value(d);
    if (grad != nullptr) {
      grad[i] = scale * loss.derivative(d);
    }
  }

  for (int offset = 16; offset > 0; offset >>= 1) {
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
  }
  if (threadIdx.x % 32 == 0) {
    warpSums[threadIdx.x / 32] = sum;
  }
  __syncthreads();
  // Only thread 0 needs the block's total, so it adds the per-warp sums itself, in warp order,
  // where reductions_block_sum has every warp add them with shuffles to give all threads the total.
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < (int)blockDim.x / 32; w++) {
      total += warpSums[w];
    }
    partialSums[blockIdx.x] = total;
  }
}

// Mean squared error terms: f(d) = d^2. Launch: see the file comment.
extern "C" __global__ void kiln_losses_mse(const float* x, const float* t, float* partialSums,
                                           float* grad, int n, float scale) {
  losses_run(LossesSquared{}, x, t, partialSums, grad, n, scale);
}
KILN_REGISTER(kiln_losses_mse)

// L1 terms: f(d) = |d|. Launch: see the file comment.
extern "C" __global__ void kiln_losses_l1(const float* x, const float* t, float* partialSums,
                                          float* grad, int n, float scale) {
  losses_run(LossesAbsolute{}, x, t, partialSums, grad, n, scale);
}
KILN_REGISTER(kiln_losses_l1)

// Smooth L1 terms with threshold beta >= 0. Launch: see the file comment.
extern "C" __global__ void kiln_losses_smooth_l1(const float* x, const float* t,
                                                 float* partialSums, float* grad, int n,
                                                 float beta, float scale) {
  losses_run(LossesSmoothAbsolute{beta}, x, t, partialSums, grad, n, scale);
}
KILN_REGISTER(kiln_losses_smooth_l1)

// Wing terms with width w > 0 and curvature epsilon > 0. Launch: see the file comment.
extern "C" __global__ void kiln_losses_wing(const float* x, const float* t, float* partialSums,
                                            float* grad, int n, float w, float epsilon,
                                            float scale) {
  LossesWing loss{w, epsilon, w - w * log1pf(w / epsilon)};
  losses_run(loss, x, t, partialSums, grad, n, scale);
}
KILN_REGISTER(kiln_losses_wing)
