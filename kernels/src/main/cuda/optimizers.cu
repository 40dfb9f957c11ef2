// Fused optimizer steps on float32 parameters: SGD with momentum, dampening, Nesterov and weight
// decay, and the Adam and AdamW steps. Each kernel updates a parameter and its state in place in
// one pass, with the formulas of kiln's CPU OptimizerKernels (dev.kiln.core.backend.cpu), which
// follow PyTorch 1.13's single-tensor torch.optim implementations. The CPU computes each element
// in double and rounds when it stores, but these kernels compute in float.
//
// Launch contract shared by every kernel here: any 1d grid and block, with a grid-stride loop
// over the n elements. A grid of ceil(n / blockDim.x) blocks gives each thread one element, and
// 256 threads per block is a good default. No shared memory. Each thread reads and writes only its
// own elements, so the launch has no races.

#include "kiln_cuda.h"

// One SGD step:
//   g = grad + weightDecay * param      (the decay term is skipped when weightDecay is 0, so an
//                                        infinite parameter does not turn g into NaN)
//   b = g                               on the first step (firstStep nonzero)
//   b = momentum * b + (1 - dampening) * g   afterwards
//   d = g + momentum * b with Nesterov (nesterov nonzero), d = b without
//   param = param - learningRate * d
// With momentum 0 there is no buffer: pass null for momentumBuffer, and d = g.
//
// Launch: see the file comment.
extern "C" __global__ void kiln_optimizers_sgd(float* __restrict__ param,
                                               const float* __restrict__ grad,
                                               float* __restrict__ momentumBuffer, int n,
                                               float learningRate, float momentum,
                                               float dampening, float weightDecay, int nesterov,
                                               int firstStep) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    float g = weightDecay == 0.0f ? grad[i] : grad[i] + weightDecay * param[i];
    float d = g;
    if (momentumBuffer != nullptr) {
      float buffer = firstStep ? g : momentum * momentumBuffer[i] + (1.0f - dampening) * g;
      momentumBuffer[i] = buffer;
      d = nesterov ? g + momentum * buffer : buffer;
    }
    param[i] = param[i] - learningRate * d;
  }
}
KILN_REGISTER(kiln_optimizers_sgd)

// The shared body of Adam and AdamW, for one element:
//   g = grad + l2 * param
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   param = param * keep - stepSize * m / (sqrt(v) / biasCorrection2Sqrt + eps)
// Adam passes l2 = weightDecay and keep = 1. AdamW passes l2 = 0 and keep = 1 - lr * weightDecay.
static __device__ __forceinline__ void optimizers_adam_element(
    float* param, const float* grad, float* expAvg, float* expAvgSq, long long i, float beta1,
    float beta2, float eps, float l2, float keep, float stepSize, float biasCorrection2Sqrt) {
  float g = l2 == 0.0f ? grad[i] : grad[i] + l2 * param[i];
  float m = beta1 * expAvg[i] + (1.0f - beta1) * g;
  float v = beta2 * expAvgSq[i] + (1.0f - beta2) * g * g;
  expAvg[i] = m;
  expAvgSq[i] = v;
  float denominator = sqrtf(v) / biasCorrection2Sqrt + eps;
  param[i] = param[i] * keep - stepSize * m / denominator;
}

// One Adam step with L2 weight decay (added to the gradient). The caller computes the two bias
// corrections of step t (counting from 1) in double and passes them rounded to float, as they
// are the same for every element:
//   stepSize = learningRate / (1 - beta1^t)
//   biasCorrection2Sqrt = sqrt(1 - beta2^t)
// expAvg and expAvgSq are the first and second moment estimates m and v, zero before step 1.
//
// Launch: see the file comment.
extern "C" __global__ void kiln_optimizers_adam(float* __restrict__ param,
                                                const float* __restrict__ grad,
                                                float* __restrict__ expAvg,
                                                float* __restrict__ expAvgSq, int n, float beta1,
                                                float beta2, float eps, float weightDecay,
                                                float stepSize, float biasCorrection2Sqrt) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    optimizers_adam_element(param, grad, expAvg, expAvgSq, i, beta1, beta2, eps, weightDecay,
                            1.0f, stepSize, biasCorrection2Sqrt);
  }
}
KILN_REGISTER(kiln_optimizers_adam)

// One AdamW step: Adam with decoupled weight decay, which scales the parameter by
// 1 - learningRate * weightDecay before the update instead of adding to the gradient. stepSize and
// biasCorrection2Sqrt are as for kiln_optimizers_adam.
//
// Launch: see the file comment.
extern "C" __global__ void kiln_optimizers_adamw(float* __restrict__ param,
                                                 const float* __restrict__ grad,
                                                 float* __restrict__ expAvg,
                                                 float* __restrict__ expAvgSq, int n,
                                                 float learningRate, float beta1, float beta2,
                                                 float eps, float weightDecay, float stepSize,
                                                 float biasCorrection2Sqrt) {
  float keep = 1.0f - learningRate * weightDecay;
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    optimizers_adam_element(param, grad, expAvg, expAvgSq, i, beta1, beta2, eps, 0.0f, keep,
                            stepSize, biasCorrection2Sqrt);
  }
}
KILN_REGISTER(kiln_optimizers_adamw)
