// Layout kernels on float32 data: fill a buffer with one value, and copy elements between two
// strided layouts. Together they let the shape ops (permute, transpose, slice, cat, expand, zeros)
// run on a device without a round trip through the host.
//
// A strided layout addresses element idx[0..rank) of a tensor of that shape at
//   offset + sum over d of idx[d] * stride[d]
// in its buffer, with every stride in elements. One copy kernel over two such layouts covers the
// shape ops. Permute and transpose read with permuted source strides, slice reads from a source
// offset, and expand reads with stride 0 along the stretched dimensions. Cat writes each input at
// a destination offset with the strides of the concatenated output.
//
// Both kernels use a grid-stride loop over 64-bit indices, so any 1d grid and block cover all n
// elements, and a grid of ceil(n / blockDim.x) blocks gives each thread one element. 256 threads
// per block is a good default. Each thread writes only its own elements.

#include "kiln_cuda.h"

// The largest rank kiln_layout_strided_copy accepts. Each block stages the geometry in a static
// __shared__ array of 3 * LAYOUT_MAX_RANK ints, which needs a bound known at compile time. Eight
// dimensions cover every tensor of a CNN with room to spare.
#define LAYOUT_MAX_RANK 8

// out[i] = value for i < n: zeros and constant tensors.
//
// Launch: any 1d grid and block (see the file comment), no shared memory.
extern "C" __global__ void kiln_layout_fill(float* out, int n, float value) {
  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    out[i] = value;
  }
}
KILN_REGISTER(kiln_layout_fill)

// dst[dstOffset + sum_d idx[d] * dstStrides[d]] = src[srcOffset + sum_d idx[d] * srcStrides[d]]
// for every index idx of `shape`, where flat element i < n is split into idx in row-major order
// (the last dimension varies fastest). geometry contains 3 * rank ints in device memory: shape,
// then srcStrides, then dstStrides, in elements. A stride of 0 repeats one element along its
// dimension. n must be the product of shape, so rank 0 copies the single element at srcOffset to
// dstOffset (n = 1, and geometry is not read).
//
// Launch: any 1d grid and block (see the file comment). No dynamic shared memory, but each block
// copies the geometry into 3 * LAYOUT_MAX_RANK ints of static shared memory before its loop, so
// the per-element index arithmetic reads shared memory instead of global memory.
// Preconditions. The kernel cannot report a violation, so DeviceLayout checks what it can:
//   - 0 <= rank <= LAYOUT_MAX_RANK (a larger rank makes every thread return without writing);
//   - every element either layout addresses lies inside its buffer;
//   - the destination layout addresses each element at most once, because two threads writing one
//     element race;
//   - the elements read do not overlap the elements written, because a thread may read an element
//     that another thread has already overwritten.
extern "C" __global__ void kiln_layout_strided_copy(const float* src, float* dst,
                                                    const int* geometry, int rank, int n,
                                                    int srcOffset, int dstOffset) {
  if (rank < 0 || rank > LAYOUT_MAX_RANK) {
    return;  // Uniform across the grid, so no thread is left waiting at the barrier below.
  }
  __shared__ int layoutGeometry[3 * LAYOUT_MAX_RANK];
  for (int k = threadIdx.x; k < 3 * rank; k += blockDim.x) {
    layoutGeometry[k] = geometry[k];
  }
  __syncthreads();
  const int* shape = layoutGeometry;
  const int* srcStrides = layoutGeometry + rank;
  const int* dstStrides = layoutGeometry + 2 * rank;

  long long step = (long long)blockDim.x * gridDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    // Split the flat index into per-dimension indices, last dimension first, and accumulate both
    // offsets on the way.
    long long rest = i;
    long long from = srcOffset;
    long long to = dstOffset;
    for (int d = rank - 1; d >= 0; d--) {
      long long index = rest % shape[d];
      rest /= shape[d];
      from += index * srcStrides[d];
      to += index * dstStrides[d];
    }
    dst[to] = src[from];
  }
}
KILN_REGISTER(kiln_layout_strided_copy)
