// General matrix product on row-major float32 matrices: C = op(A) op(B), or C += op(A) op(B),
// with the same arguments as kiln's CPU Gemm.gemm (dev.kiln.core.backend.cpu).
//
// op(A) is m x k: A is stored as m x k, or as k x m when transA is nonzero. op(B) is k x n: B is
// stored as k x n, or as n x k when transB is nonzero. C is m x n and must not overlap A or B.
// When accumulate is zero, C's previous contents are never read, so a NaN there cannot leak into
// the result: both kernels store with `accumulate ? c[index] + ... : ...`, which loads c[index]
// only when accumulate is nonzero.
//
// Two kernels compute the same product:
//   - kiln_matmul_naive: one thread per element of C, reading a row of op(A) and a column of
//     op(B) straight from global memory. Easy to check, and slow: every input element is loaded
//     from memory m or n times.
//   - kiln_matmul_tiled: each block computes a 64 x 64 tile of C. It walks k in steps of 16,
//     staging a 64 x 16 panel of op(A) and a 16 x 64 panel of op(B) in shared memory, where its
//     256 threads reuse every staged value 64 times. Each thread keeps a 4 x 4 block of C in
//     registers (register blocking), so one value loaded from shared memory feeds 4 multiply-adds.

#include "kiln_cuda.h"

// Element (row, col) of op(A) for A stored as described above. Rows index m and cols index k.
static __device__ __forceinline__ float matmul_load_a(const float* a, int transA, int m, int k,
                                                     int row, int col) {
  return transA ? a[(long long)col * m + row] : a[(long long)row * k + col];
}

// Element (row, col) of op(B). Rows index k and cols index n.
static __device__ __forceinline__ float matmul_load_b(const float* b, int transB, int k, int n,
                                                     int row, int col) {
  return transB ? b[(long long)col * k + row] : b[(long long)row * n + col];
}

// C[row, col] = sum over p of op(A)[row, p] * op(B)[p, col], plus the old C[row, col] when
// accumulate is nonzero.
//
// Launch: 2d grid and block. Thread (x, y) of block (bx, by) computes column bx * blockDim.x + x
// of C, so the grid must cover n along x. Along y, the rows come in strips of blockDim.y, and
// block row by computes strips by, by + gridDim.y, by + 2 * gridDim.y and so on. A grid of
// ceil(m / blockDim.y) rows gives each block one strip, but gridDim.y may be at most 65535 on a
// GPU, so for m > 65535 * blockDim.y the blocks loop. For instance, use a block of (16, 16) and a
// grid of (ceil(n / 16), min(ceil(m / 16), 65535)). Threads outside C do nothing. No shared
// memory.
extern "C" __global__ void kiln_matmul_naive(const float* __restrict__ a,
                                             const float* __restrict__ b, float* __restrict__ c,
                                             int m, int n, int k, int transA, int transB,
                                             int accumulate) {
  int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) {
    return;
  }
  long long strips = ((long long)m + blockDim.y - 1) / blockDim.y;
  for (long long strip = blockIdx.y; strip < strips; strip += gridDim.y) {
    long long row = strip * blockDim.y + threadIdx.y;
    if (row >= m) {
      continue;
    }
    float sum = 0.0f;
    for (int p = 0; p < k; p++) {
      sum += matmul_load_a(a, transA, m, k, (int)row, p) *
             matmul_load_b(b, transB, k, n, p, col);
    }
    long long index = row * n + col;
    c[index] = accumulate ? c[index] + sum : sum;
  }
}
KILN_REGISTER(kiln_matmul_naive)

// Tile sizes of kiln_matmul_tiled: a block computes MATMUL_TILE x MATMUL_TILE elements of C and
// steps through k by MATMUL_DEPTH. Each of its 16 x 16 threads computes 4 x 4 of them.
#define MATMUL_TILE 64
#define MATMUL_DEPTH 16
#define MATMUL_THREADS 16
#define MATMUL_PER_THREAD (MATMUL_TILE / MATMUL_THREADS)

// Computes the 64 x 64 tile of C whose top left element is (rowBase, colBase), for
// kiln_matmul_tiled below. Thread (tx, ty), whose linear index in the block is thread, computes
// rows rowBase + ty + 16*i and columns colBase + tx + 16*j for i, j in 0..3. Every thread of the
// block must call it with the same rowBase and colBase, because it waits at __syncthreads.
static __device__ __forceinline__ void matmul_tiled_tile(
    const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int m, int n,
    int k, int transA, int transB, int accumulate, int rowBase, int colBase, int tx, int ty,
    int thread, float (*aPanel)[MATMUL_TILE + 1], float (*bPanel)[MATMUL_TILE + 1]) {
  float acc[MATMUL_PER_THREAD][MATMUL_PER_THREAD];
  for (int i = 0; i < MATMUL_PER_THREAD; i++) {
    for (int j = 0; j < MATMUL_PER_THREAD; j++) {
      acc[i][j] = 0.0f;
    }
  }

  for (int p0 = 0; p0 < k; p0 += MATMUL_DEPTH) {
    // Stage both panels: 1024 values each, 4 per thread. Consecutive threads take consecutive
    // addresses of the stored matrix, so the global loads coalesce: along k for a plain A and a
    // transposed B, along m or n otherwise.
    for (int e = thread; e < MATMUL_TILE * MATMUL_DEPTH; e += MATMUL_THREADS * MATMUL_THREADS) {
      int r = transA ? e % MATMUL_TILE : e / MATMUL_DEPTH;
      int p = transA ? e / MATMUL_TILE : e % MATMUL_DEPTH;
      bool inside = rowBase + r < m && p0 + p < k;
      aPanel[p][r] = inside ? matmul_load_a(a, transA, m, k, rowBase + r, p0 + p) : 0.0f;

      int col = transB ? e / MATMUL_DEPTH : e % MATMUL_TILE;
      int q = transB ? e % MATMUL_DEPTH : e / MATMUL_TILE;
      inside = p0 + q < k && colBase + col < n;
      bPanel[q][col] = inside ? matmul_load_b(b, transB, k, n, p0 + q, colBase + col) : 0.0f;
    }
    __syncthreads();

    for (int p = 0; p < MATMUL_DEPTH; p++) {
      float aValues[MATMUL_PER_THREAD];
      float bValues[MATMUL_PER_THREAD];
      for (int i = 0; i < MATMUL_PER_THREAD; i++) {
        aValues[i] = aPanel[p][ty + MATMUL_THREADS * i];
        bValues[i] = bPanel[p][tx + MATMUL_THREADS * i];
      }
      for (int i = 0; i < MATMUL_PER_THREAD; i++) {
        for (int j = 0; j < MATMUL_PER_THREAD; j++) {
          acc[i][j] += aValues[i] * bValues[j];
        }
      }
    }
    // The next step overwrites the panels, so every thread must be done reading them.
    __syncthreads();
  }

  for (int i = 0; i < MATMUL_PER_THREAD; i++) {
    int row = rowBase + ty + MATMUL_THREADS * i;
    for (int j = 0; j < MATMUL_PER_THREAD; j++) {
      int col = colBase + tx + MATMUL_THREADS * j;
      if (row < m && col < n) {
        long long index = (long long)row * n + col;
        c[index] = accumulate ? c[index] + acc[i][j] : acc[i][j];
      }
    }
  }
}

// The same product as kiln_matmul_naive, tiled through shared memory.
//
// Launch: block (16, 16) and grid (ceil(n / 64), min(ceil(m / 64), 65535)), because gridDim.y may
// be at most 65535 on a GPU. Block (bx, by) computes columns 64*bx to 64*bx + 63 of C, and rows
// 64*t to 64*t + 63 for each row tile t = by, by + gridDim.y, by + 2 * gridDim.y and so on below
// ceil(m / 64). No dynamic shared memory: the two panels take 8.1 KiB of static shared memory. Any
// m, n, k >= 0 works, because panels that reach past an edge are padded with zeros.
//
// Thread (tx, ty) computes C at rows 64*t + ty + 16*i and columns 64*bx + tx + 16*j for i, j in
// 0..3. A thread's elements are spread 16 apart rather than taking a 4 x 4 square. Then the 16
// threads of a half-warp with consecutive tx read consecutive columns of a shared-memory row
// (no bank conflicts) and write consecutive columns of C (coalesced stores).
extern "C" __global__ void kiln_matmul_tiled(const float* __restrict__ a,
                                             const float* __restrict__ b, float* __restrict__ c,
                                             int m, int n, int k, int transA, int transB,
                                             int accumulate) {
  // aPanel[p][r] = op(A)[rowBase + r, p0 + p]: stored k-major, so the inner loop reads a row.
  // bPanel[p][col] = op(B)[p0 + p, colBase + col]. The extra column shifts each row by one bank,
  // so staging threads that write down a column (consecutive p) hit different banks.
  __shared__ float aPanel[MATMUL_DEPTH][MATMUL_TILE + 1];
  __shared__ float bPanel[MATMUL_DEPTH][MATMUL_TILE + 1];

  int tx = threadIdx.x;
  int ty = threadIdx.y;
  int thread = ty * MATMUL_THREADS + tx;
  int colBase = blockIdx.x * MATMUL_TILE;

  // Every thread of the block computes the same bound and steps through the same tiles, so all
  // of them reach each __syncthreads in matmul_tiled_tile.
  int tiles = (int)(((long long)m + MATMUL_TILE - 1) / MATMUL_TILE);
  for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
    matmul_tiled_tile(a, b, c, m, n, k, transA, transB, accumulate, tile * MATMUL_TILE, colBase,
                      tx, ty, thread, aPanel, bPanel);
  }
}
KILN_REGISTER(kiln_matmul_tiled)
