// Elementwise ops on float32 data: unary math and activations with their gradients, and binary
// arithmetic with NumPy broadcasting.
//
// Each op has a code, the position of the same op in kiln's Java enums UnaryOp and BinaryOp
// (dev.kiln.core.ops), whose lambdas are the reference definitions these kernels are tested
// against. The switch on the code is uniform across a launch, so every warp takes the same branch
// and the switch costs a few instructions per element.
//
// All kernels here use a grid-stride loop over 64-bit indices: any 1d grid and block cover all n
// elements, and a grid of ceil(n / blockDim.x) blocks gives each thread one element. 256 threads
// per block is a good default. None uses shared memory, and each thread writes only its own
// elements, so outputs may alias inputs (in-place updates). The exception is an input that
// kiln_elementwise_binary_broadcast stretches, whose elements several threads read.

#include "kiln_cuda.h"

// Codes of the unary ops, in the order of UnaryOp. a and b are the op's scalar parameters.
enum ElementwiseUnaryOp : int {
  ELEMENTWISE_NEG = 0,
  ELEMENTWISE_EXP = 1,
  ELEMENTWISE_LOG = 2,
  ELEMENTWISE_SQRT = 3,
  ELEMENTWISE_ABS = 4,
  ELEMENTWISE_SIGN = 5,             // sign(0) = 0, and NaN stays NaN
  ELEMENTWISE_POW = 6,              // x^a
  ELEMENTWISE_ADD_SCALAR = 7,       // x + a
  ELEMENTWISE_MUL_SCALAR = 8,       // x * a
  ELEMENTWISE_CLAMP = 9,            // min(max(x, a), b), and NaN stays NaN
  ELEMENTWISE_CLAMP_GRAD = 10,      // 1 where a <= x <= b, else 0
  ELEMENTWISE_RELU = 11,            // NaN stays NaN
  ELEMENTWISE_RELU_GRAD = 12,       // 0 for x <= 0, else 1 (also for NaN)
  ELEMENTWISE_LEAKY_RELU = 13,      // x for x > 0, else a * x
  ELEMENTWISE_LEAKY_RELU_GRAD = 14, // 1 for x > 0, else a
  ELEMENTWISE_ELU = 15,             // x for x > 0, else a * (e^x - 1)
  ELEMENTWISE_ELU_GRAD = 16,        // 1 for x > 0, else a * e^x
  ELEMENTWISE_TANH = 17,
  ELEMENTWISE_TANH_GRAD = 18,       // from the output y: 1 - y^2
  ELEMENTWISE_SIGMOID = 19,
  ELEMENTWISE_SIGMOID_GRAD = 20     // from the output y: y * (1 - y)
};

// Codes of the binary ops, in the order of BinaryOp.
enum ElementwiseBinaryOp : int {
  ELEMENTWISE_ADD = 0,
  ELEMENTWISE_SUB = 1,
  ELEMENTWISE_MUL = 2,
  ELEMENTWISE_DIV = 3,
  ELEMENTWISE_MAXIMUM = 4,  // NaN if either input is NaN
  ELEMENTWISE_GREATER = 5,  // 1 where x > y, else 0
  ELEMENTWISE_EQUAL = 6     // 1 where x == y, else 0
};

// Applies unary op `op` to x. An unknown code gives NaN, so a wrong code cannot pass a test.
static __device__ __forceinline__ float elementwise_unary(int op, float x, float a, float b) {
  switch (op) {
    case ELEMENTWISE_NEG:
      return -x;
    case ELEMENTWISE_EXP:
      return expf(x);
    case ELEMENTWISE_LOG:
      return logf(x);
    case ELEMENTWISE_SQRT:
      return sqrtf(x);
    case ELEMENTWISE_ABS:
      return fabsf(x);
    case ELEMENTWISE_SIGN:
      // x itself for 0, -0 and NaN, as Math.signum does.
      return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x);
    case ELEMENTWISE_POW:
      return powf(x, a);
    case ELEMENTWISE_ADD_SCALAR:
      return x + a;
    case ELEMENTWISE_MUL_SCALAR:
      return x * a;
    case ELEMENTWISE_CLAMP:
      return x != x ? x : fminf(fmaxf(x, a), b);
    case ELEMENTWISE_CLAMP_GRAD:
      return x >= a && x <= b ? 1.0f : 0.0f;
    case ELEMENTWISE_RELU:
      return x > 0.0f || x != x ? x : 0.0f;
    case ELEMENTWISE_RELU_GRAD:
      // A NaN input passes its gradient, as in PyTorch, whose ReLU backward zeroes the gradient
      // only where the output is at most 0.
      return x <= 0.0f ? 0.0f : 1.0f;
    case ELEMENTWISE_LEAKY_RELU:
      return x > 0.0f ? x : a * x;
    case ELEMENTWISE_LEAKY_RELU_GRAD:
      return x > 0.0f ? 1.0f : a;
    case ELEMENTWISE_ELU:
      // expm1f keeps the relative precision of e^x - 1 for x near 0.
      return x > 0.0f ? x : a * expm1f(x);
    case ELEMENTWISE_ELU_GRAD:
      return x > 0.0f ? 1.0f : a * expf(x);
    case ELEMENTWISE_TANH:
      return tanhf(x);
    case ELEMENTWISE_TANH_GRAD:
      return 1.0f - x * x;
    case ELEMENTWISE_SIGMOID: {
      // Both branches divide by a number in [1, 2], so neither overflows for large |x|.
      if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
      }
      float e = expf(x);
      return e / (1.0f + e);
    }
    case ELEMENTWISE_SIGMOID_GRAD:
      return x * (1.0f - x);
    default:
      return __int_as_float(0x7fc00000);  // NaN
  }
}

// Applies binary op `op` to (x, y). An unknown code gives NaN.
static __device__ __forceinline__ float elementwise_binary(int op, float x, float y) {
  switch (op) {
    case ELEMENTWISE_ADD:
      return x + y;
    case ELEMENTWISE_SUB:
      return x - y;
    case ELEMENTWISE_MUL:
      return x * y;
    case ELEMENTWISE_DIV:
      return x / y;
    case ELEMENTWISE_MAXIMUM:
      // fmaxf would return the number when the other input is NaN, but Math.max returns NaN.
      return x != x || y != y ? x + y : fmaxf(x, y);
    case ELEMENTWISE_GREATER:
      return x > y ? 1.0f : 0.0f;
    case ELEMENTWISE_EQUAL:
      return x == y ? 1.0f : 0.0f;
    default:
      return __int_as_float(0x7fc00000);
  }
}

// y[i] = op(x[i], a, b) for i < n.
//
// Launch: any 1d grid and block (see the file comment). y may be x.
extern "C" __global__ void kiln_elementwise_unary(const float* x, float* y, int n, int op, float a,
                                                  float b) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    y[i] = elementwise_unary(op, x[i], a, b);
  }
}
KILN_REGISTER(kiln_elementwise_unary)

// The backward pass of an activation: gradIn[i] = gradOut[i] * op(saved[i], a, b), where op is a
// *_GRAD code, except for RELU_GRAD, which selects: gradIn[i] = op(saved[i]) == 0 ? 0 : gradOut[i].
// That is PyTorch's threshold_backward, so a NaN or infinite gradient stops at a ReLU whose input
// is at most 0, where a product with 0 would give NaN. saved is what that code takes: the forward input x for RELU_GRAD,
// LEAKY_RELU_GRAD, ELU_GRAD and CLAMP_GRAD, and the forward output y for TANH_GRAD and
// SIGMOID_GRAD. Fusing the product saves one pass over memory and one temporary buffer.
//
// Launch: any 1d grid and block (see the file comment). gradIn may be gradOut.
extern "C" __global__ void kiln_elementwise_unary_backward(const float* gradOut,
                                                           const float* saved, float* gradIn,
                                                           int n, int op, float a, float b) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    float derivative = elementwise_unary(op, saved[i], a, b);
    gradIn[i] = op == ELEMENTWISE_RELU_GRAD ? (derivative == 0.0f ? 0.0f : gradOut[i])
                                            : gradOut[i] * derivative;
  }
}
KILN_REGISTER(kiln_elementwise_unary_backward)

// out[i] = op(x[i], y[i]) for i < n: the binary op on two inputs of the same shape.
//
// Launch: any 1d grid and block (see the file comment). out may be x or y.
extern "C" __global__ void kiln_elementwise_binary(const float* x, const float* y, float* out,
                                                   int n, int op) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    out[i] = elementwise_binary(op, x[i], y[i]);
  }
}
KILN_REGISTER(kiln_elementwise_binary)

// out = op(x, y) with NumPy broadcasting. The output has `rank` dimensions, and geometry contains
// 3 * rank ints in device memory: the output shape, then x's strides, then y's strides, each in
// elements. The caller aligns x and y to the output's rank and sets the stride of every
// dimension that broadcasting stretches from size 1 to 0. One formula then serves every case:
// offset = sum over d of index[d] * stride[d]. n is the output's element count.
//
// Launch: any 1d grid and block (see the file comment). rank >= 1. out must not alias a
// broadcast input, because other threads still read the input elements that one thread
// overwrites.
extern "C" __global__ void kiln_elementwise_binary_broadcast(const float* x, const float* y,
                                                             float* out, const int* geometry,
                                                             int rank, int n, int op) {
  const int* shape = geometry;
  const int* xStrides = geometry + rank;
  const int* yStrides = geometry + 2 * rank;
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    // Split the flat index into per-dimension indices, last dimension first.
    long long rest = i;
    long long xOffset = 0;
    long long yOffset = 0;
    for (int d = rank - 1; d >= 0; d--) {
      long long index = rest % shape[d];
      rest /= shape[d];
      xOffset += index * xStrides[d];
      yOffset += index * yStrides[d];
    }
    out[i] = elementwise_binary(op, x[xOffset], y[yOffset]);
  }
}
KILN_REGISTER(kiln_elementwise_binary_broadcast)
