// General matrix product on row-major float32 matrices: C = op(A) op(B), or C += op(A) op(B),
// with the same arguments as kiln's CPU Gemm.gemm (dev.kiln.core.backend.cpu).
//
// op(A) is m x k: A is stored as m x k, or as k x m when transA is nonzero. op(B) is k x n: B is
// stored as k x n, or as n x k when transB is nonzero. C is m x n and must not overlap A or B.
// When accumulate is zero, C's previous contents are never read, so a NaN there cannot leak into
// the result: every kernel that writes C stores with `accumulate ? c[index] + ... : ...`, which
// loads c[index] only when accumulate is nonzero.
//
// Three kernels compute the whole product (further down, a pair computes it in slices of k and adds
// the slices up):
//   - kiln_matmul_naive: one thread per element of C, reading a row of op(A) and a column of
//     op(B) straight from global memory. Easy to check, and slow: every input element is loaded
//     from memory m or n times.
//   - kiln_matmul_tiled: each block computes a 64 x 64 tile of C. It walks k in steps of 16,
//     staging a 64 x 16 panel of op(A) and a 16 x 64 panel of op(B) in shared memory, where its
//     256 threads reuse every staged value 64 times. Each thread keeps a 4 x 4 block of C in
//     registers (register blocking), so one value loaded from shared memory feeds 4 multiply-adds.
//   - kiln_matmul_tiled128: the same idea taken further, for large products. A block computes a
//     128 x 128 tile and each thread an 8 x 8 block of C, so one value loaded from shared memory
//     feeds 8 multiply-adds, and four neighbouring values come in one 16-byte load. Two more
//     tricks, which are easy to mix up:
//       register prefetch: each thread issues the next panels' global loads before this step's
//       arithmetic. A GPU thread stalls only where it first uses a loaded register, so the wait
//       for memory overlaps the multiply-adds. This would work with one pair of panels too.
//       double buffering: the prefetched values go into a second pair of panels, which no thread
//       reads during this step, so each step needs one barrier instead of two.
//
// Why the steps matter. A multiprocessor of an H100 or H200 completes 4 warp-wide float
// multiply-adds per clock, and its shared memory serves 32 banks of 4 bytes per clock: one pass.
// Lanes of a warp that read the same address share a pass (a broadcast). A warp of a 16 x 16
// block is two rows ty with tx from 0 to 15, so a load that depends only on ty has two addresses
// and takes one pass.
//   - 64 x 64 kernel, per step of k and warp: 4 loads of A (one pass each, two addresses) and 4 of
//     B (one pass each, 16 consecutive floats) make 8 passes. They feed 16 multiply-adds per
//     thread, which take 4 clocks, so shared memory caps the kernel near half of the peak.
//   - 128 x 128 kernel: 2 16-byte loads of A (one pass each) and 2 of B (64 consecutive floats,
//     two passes each) make 6 passes, for 64 multiply-adds per thread, 16 clocks. Arithmetic is
//     then the limit.
// These are estimates from counting, not measurements. The hardware may also serve a warp's 16-byte
// loads in quarter-warp phases, which would add passes to the 128 x 128 kernel's count.
//
// Batches. Each kernel below except kiln_matmul_sum_slices takes `batches` products of the same
// m, n and k in one launch, so that a convolution over a group of images needs one launch instead
// of one per image. Product z reads A at a + z * strideA and B at b + z * strideB, with strides
// counted in floats. A stride of 0 makes every product read the same matrix, such as a
// convolution's weight. The full-product kernels write product z's C at c + z * strideC, and
// blockIdx.z picks the product. gridDim.z may be at most 65535 on a GPU, so a grid of fewer layers
// along z than products loops: layer bz computes products bz, bz + gridDim.z, bz + 2 * gridDim.z
// and so on. The C matrices of a batch must not overlap one another. A single product is batches =
// 1 with every stride 0, which computes exactly what it would without the batch loop: each block
// adds one offset of zero to each pointer. kiln_matmul_tiled_slices sums the products instead, as
// described further down.

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
// accumulate is nonzero, for each product of the batch.
//
// Launch: 3d grid and 2d block. Thread (x, y) of block (bx, by, bz) computes column bx * blockDim.x
// + x of C, so the grid must cover n along x. Along y, the rows come in strips of blockDim.y, and
// block row by computes strips by, by + gridDim.y, by + 2 * gridDim.y and so on. A grid of
// ceil(m / blockDim.y) rows gives each block one strip, but gridDim.y may be at most 65535 on a
// GPU, so for m > 65535 * blockDim.y the blocks loop. Along z, the blocks loop over the products as
// the header describes. For instance, use a block of (16, 16) and a grid of (ceil(n / 16),
// min(ceil(m / 16), 65535), min(batches, 65535)). Threads outside C do nothing. No shared memory.
extern "C" __global__ void kiln_matmul_naive(const float* __restrict__ a,
                                             const float* __restrict__ b, float* __restrict__ c,
                                             int m, int n, int k, int transA, int transB,
                                             int accumulate, int batches, long long strideA,
                                             long long strideB, long long strideC) {
  int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) {
    return;
  }
  long long strips = ((long long)m + blockDim.y - 1) / blockDim.y;
  for (int batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    const float* batchA = a + batch * strideA;
    const float* batchB = b + batch * strideB;
    float* batchC = c + batch * strideC;
    for (long long strip = blockIdx.y; strip < strips; strip += gridDim.y) {
      long long row = strip * blockDim.y + threadIdx.y;
      if (row >= m) {
        continue;
      }
      float sum = 0.0f;
      for (int p = 0; p < k; p++) {
        sum += matmul_load_a(batchA, transA, m, k, (int)row, p) *
               matmul_load_b(batchB, transB, k, n, p, col);
      }
      long long index = row * n + col;
      batchC[index] = accumulate ? batchC[index] + sum : sum;
    }
  }
}
KILN_REGISTER(kiln_matmul_naive)

// Tile sizes of kiln_matmul_tiled: a block computes MATMUL_TILE x MATMUL_TILE elements of C and
// steps through k by MATMUL_DEPTH. Each of its 16 x 16 threads computes 4 x 4 of them.
#define MATMUL_TILE 64
#define MATMUL_DEPTH 16
// Threads along each side of a block of every tiled kernel, and in the whole block.
#define MATMUL_BLOCK_SIDE 16
#define MATMUL_BLOCK_THREADS (MATMUL_BLOCK_SIDE * MATMUL_BLOCK_SIDE)
#define MATMUL_PER_THREAD (MATMUL_TILE / MATMUL_BLOCK_SIDE)

// Adds the steps kBegin <= p < kEnd of the 64 x 64 tile of C whose top left element is (rowBase,
// colBase) to acc, for the kernels below. Thread (tx, ty), whose linear index in the block is
// thread, holds acc[i][j] for row rowBase + ty + 16*i and column colBase + tx + 16*j, i, j in
// 0..3. Every thread of the block must call it with the same rowBase, colBase, kBegin and kEnd,
// because it waits at __syncthreads.
static __device__ __forceinline__ void matmul_tiled_steps(
    const float* __restrict__ a, const float* __restrict__ b, int m, int n, int k, int kBegin,
    int kEnd, int transA, int transB, int rowBase, int colBase, int tx, int ty, int thread,
    float (*aPanel)[MATMUL_TILE + 1], float (*bPanel)[MATMUL_TILE + 1],
    float (*acc)[MATMUL_PER_THREAD]) {
  for (int p0 = kBegin; p0 < kEnd; p0 += MATMUL_DEPTH) {
    // Stage both panels: 1024 values each, 4 per thread. Consecutive threads take consecutive
    // addresses of the stored matrix, so the global loads coalesce: along k for a plain A and a
    // transposed B, along m or n otherwise.
    for (int e = thread; e < MATMUL_TILE * MATMUL_DEPTH; e += MATMUL_BLOCK_THREADS) {
      int r = transA ? e % MATMUL_TILE : e / MATMUL_DEPTH;
      int p = transA ? e / MATMUL_TILE : e % MATMUL_DEPTH;
      bool inside = rowBase + r < m && p0 + p < kEnd;
      aPanel[p][r] = inside ? matmul_load_a(a, transA, m, k, rowBase + r, p0 + p) : 0.0f;

      int col = transB ? e / MATMUL_DEPTH : e % MATMUL_TILE;
      int q = transB ? e % MATMUL_DEPTH : e / MATMUL_TILE;
      inside = p0 + q < kEnd && colBase + col < n;
      bPanel[q][col] = inside ? matmul_load_b(b, transB, k, n, p0 + q, colBase + col) : 0.0f;
    }
    __syncthreads();

    for (int p = 0; p < MATMUL_DEPTH; p++) {
      float aValues[MATMUL_PER_THREAD];
      float bValues[MATMUL_PER_THREAD];
      for (int i = 0; i < MATMUL_PER_THREAD; i++) {
        aValues[i] = aPanel[p][ty + MATMUL_BLOCK_SIDE * i];
        bValues[i] = bPanel[p][tx + MATMUL_BLOCK_SIDE * i];
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
}

// Writes the values that matmul_tiled_steps summed in acc to C, or adds them to C when accumulate
// is nonzero. Elements outside C are skipped.
static __device__ __forceinline__ void matmul_tiled_store(float* __restrict__ c, int m, int n,
                                                          int accumulate, int rowBase,
                                                          int colBase, int tx, int ty,
                                                          float (*acc)[MATMUL_PER_THREAD]) {
  for (int i = 0; i < MATMUL_PER_THREAD; i++) {
    int row = rowBase + ty + MATMUL_BLOCK_SIDE * i;
    for (int j = 0; j < MATMUL_PER_THREAD; j++) {
      int col = colBase + tx + MATMUL_BLOCK_SIDE * j;
      if (row < m && col < n) {
        long long index = (long long)row * n + col;
        c[index] = accumulate ? c[index] + acc[i][j] : acc[i][j];
      }
    }
  }
}

// Sets every value of a thread's 4 x 4 block of C to zero before the first step.
static __device__ __forceinline__ void matmul_tiled_zero(float (*acc)[MATMUL_PER_THREAD]) {
  for (int i = 0; i < MATMUL_PER_THREAD; i++) {
    for (int j = 0; j < MATMUL_PER_THREAD; j++) {
      acc[i][j] = 0.0f;
    }
  }
}

// The same product as kiln_matmul_naive, tiled through shared memory.
//
// Launch: block (16, 16) and grid (ceil(n / 64), min(ceil(m / 64), 65535), min(batches, 65535)),
// because gridDim.y and gridDim.z may be at most 65535 on a GPU. Block (bx, by, bz) computes
// columns 64*bx to 64*bx + 63 of C, and rows 64*t to 64*t + 63 for each row tile t = by, by +
// gridDim.y, by + 2 * gridDim.y and so on below ceil(m / 64), of each product that the header's
// loop over z gives it. No dynamic shared memory: the two panels take 8.1 KiB of static shared
// memory. Any m, n, k >= 0 works, because panels that reach past an edge are padded with zeros.
//
// Thread (tx, ty) computes C at rows 64*t + ty + 16*i and columns 64*bx + tx + 16*j for i, j in
// 0..3. A thread's elements are spread 16 apart rather than taking a 4 x 4 square. Then the 16
// threads of a half-warp with consecutive tx read consecutive columns of a shared-memory row
// (no bank conflicts) and write consecutive columns of C (coalesced stores).
extern "C" __global__ void kiln_matmul_tiled(const float* __restrict__ a,
                                             const float* __restrict__ b, float* __restrict__ c,
                                             int m, int n, int k, int transA, int transB,
                                             int accumulate, int batches, long long strideA,
                                             long long strideB, long long strideC) {
  // aPanel[p][r] = op(A)[rowBase + r, p0 + p]: stored k-major, so the inner loop reads a row.
  // bPanel[p][col] = op(B)[p0 + p, colBase + col]. The extra column shifts each row by one bank,
  // so the 16 staging threads that write down one column (consecutive p) hit 16 different banks.
  // A warp writes two such columns, which share 15 banks: a 2-way conflict in the staging stores
  // that the padding does not remove.
  __shared__ float aPanel[MATMUL_DEPTH][MATMUL_TILE + 1];
  __shared__ float bPanel[MATMUL_DEPTH][MATMUL_TILE + 1];

  int tx = threadIdx.x;
  int ty = threadIdx.y;
  int thread = ty * MATMUL_BLOCK_SIDE + tx;
  int colBase = blockIdx.x * MATMUL_TILE;

  // Every thread of the block computes the same bounds and steps through the same products and
  // tiles, so all of them reach each __syncthreads in matmul_tiled_steps.
  int tiles = (int)(((long long)m + MATMUL_TILE - 1) / MATMUL_TILE);
  for (int batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
      float acc[MATMUL_PER_THREAD][MATMUL_PER_THREAD];
      matmul_tiled_zero(acc);
      matmul_tiled_steps(a + batch * strideA, b + batch * strideB, m, n, k, 0, k, transA, transB,
                         tile * MATMUL_TILE, colBase, tx, ty, thread, aPanel, bPanel, acc);
      matmul_tiled_store(c + batch * strideC, m, n, accumulate, tile * MATMUL_TILE, colBase, tx,
                         ty, acc);
    }
  }
}
KILN_REGISTER(kiln_matmul_tiled)

// Splitting k. Take a convolution's weight gradient: C is outChannels x taps, often a single
// tile, and k is the number of output positions, often tens of thousands. The kernels above then
// run one block per tile, and each block walks all of k while most multiprocessors stay idle. The
// two kernels below cut the sum over k into slices instead: kiln_matmul_tiled_slices computes the
// product of each slice into a partial C of its own, and kiln_matmul_sum_slices adds the partials
// up in slice order. The result is the same for every run, because no atomics decide the order of
// the sums.
//
// The same pair computes the sum of a batch of products, C = op(A_0) op(B_0) + op(A_1) op(B_1) +
// ..., which is a convolution's weight gradient over a group of images. The products' steps are
// taken one after another, as one sum of batches * k steps, and slices cut that long sum, so a
// slice may end inside one product and go on into the next. Each block keeps its running sums in
// registers across that boundary.

// partial[z] = the terms op(A_i)[:, p] op(B_i)[p, :] of slice z, summed in step order, where step
// (i, p) of product i is number i * k + p of the batches * k steps and slice z covers the steps
// z * sliceDepth <= i * k + p < min(batches * k, (z + 1) * sliceDepth). A_i starts at a + i *
// strideA and B_i at b + i * strideB. partial has room for ceil(batches * k / sliceDepth) matrices
// of m x n, one after another. With batches = 1 this is the product of slice z of k.
//
// Launch: block (16, 16) and grid (ceil(n / 64), min(ceil(m / 64), 65535), min(slices, 65535)),
// where slices = ceil(batches * k / sliceDepth): as for kiln_matmul_tiled, with the slices along z
// in place of the products. sliceDepth must be at least 1, and a multiple of 16 keeps every panel
// but the last of each product full.
extern "C" __global__ void kiln_matmul_tiled_slices(const float* __restrict__ a,
                                                    const float* __restrict__ b,
                                                    float* __restrict__ partial, int m, int n,
                                                    int k, int transA, int transB, int sliceDepth,
                                                    int batches, long long strideA,
                                                    long long strideB) {
  __shared__ float aPanel[MATMUL_DEPTH][MATMUL_TILE + 1];
  __shared__ float bPanel[MATMUL_DEPTH][MATMUL_TILE + 1];

  int tx = threadIdx.x;
  int ty = threadIdx.y;
  int thread = ty * MATMUL_BLOCK_SIDE + tx;
  int colBase = blockIdx.x * MATMUL_TILE;
  long long steps = (long long)batches * k;
  long long slices = (steps + sliceDepth - 1) / sliceDepth;

  // The bounds are the same for every thread of the block, as in kiln_matmul_tiled.
  int tiles = (int)(((long long)m + MATMUL_TILE - 1) / MATMUL_TILE);
  for (long long slice = blockIdx.z; slice < slices; slice += gridDim.z) {
    long long begin = slice * sliceDepth;
    long long end = begin + sliceDepth < steps ? begin + sliceDepth : steps;
    float* c = partial + slice * m * n;
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
      float acc[MATMUL_PER_THREAD][MATMUL_PER_THREAD];
      matmul_tiled_zero(acc);
      // The products whose steps the slice covers: the slice is not empty, so k >= 1 here.
      for (long long batch = begin / k; batch * k < end; batch++) {
        long long first = batch * k;
        int kBegin = (int)(begin > first ? begin - first : 0);
        int kEnd = (int)(end - first < k ? end - first : k);
        matmul_tiled_steps(a + batch * strideA, b + batch * strideB, m, n, k, kBegin, kEnd, transA,
                           transB, tile * MATMUL_TILE, colBase, tx, ty, thread, aPanel, bPanel,
                           acc);
      }
      matmul_tiled_store(c, m, n, 0, tile * MATMUL_TILE, colBase, tx, ty, acc);
    }
  }
}
KILN_REGISTER(kiln_matmul_tiled_slices)

// C[i] = partial[0][i] + partial[1][i] + ... + partial[slices - 1][i], added in that order, for
// each of the m * n elements i of C, plus the old C[i] when accumulate is nonzero. partial is the
// output of kiln_matmul_tiled_slices, slices matrices of m x n one after another.
//
// Launch: 1d, with any grid and block. Each thread takes elements blockIdx.x * blockDim.x +
// threadIdx.x, then one whole grid further on, and so on. No shared memory.
extern "C" __global__ void kiln_matmul_sum_slices(const float* __restrict__ partial,
                                                  float* __restrict__ c, int m, int n, int slices,
                                                  int accumulate) {
  long long count = (long long)m * n;
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
    float sum = 0.0f;
    for (int z = 0; z < slices; z++) {
      sum += partial[z * count + i];
    }
    c[i] = accumulate ? c[i] + sum : sum;
  }
}
KILN_REGISTER(kiln_matmul_sum_slices)

// Tile sizes of kiln_matmul_tiled128: a block computes 128 x 128 elements of C and steps through k
// by 8. Each of its 16 x 16 threads computes 8 x 8 of them, as two groups of 4 rows times two
// groups of 4 columns.
#define MATMUL_BIG_TILE 128
#define MATMUL_BIG_DEPTH 8
#define MATMUL_BIG_PER_THREAD 8
#define MATMUL_BIG_GROUP 4
// A panel row has 128 values and 4 of padding. Without the padding, the staging threads that
// write a column of a panel (consecutive p, the same r) would all hit one bank, because 128 is a
// multiple of the 32 banks. With it, row p starts 4 banks further on, and a row stays a multiple
// of 16 bytes long, which the 16-byte loads need.
#define MATMUL_BIG_ROW (MATMUL_BIG_TILE + 4)
// Values of each panel that one thread stages per step: 128 * 8 / 256.
#define MATMUL_BIG_STAGED (MATMUL_BIG_TILE * MATMUL_BIG_DEPTH / MATMUL_BLOCK_THREADS)

// Places element e (0 to 1023) of a 128 x 8 panel: tileOffset is its row of op(A) or column of
// op(B) within the tile, and depth its step within the panel. depthContiguous is nonzero when
// consecutive steps along k are adjacent in the stored matrix, as in a plain A and a transposed B.
// Consecutive e then take consecutive steps, and otherwise consecutive rows or columns, so that
// consecutive threads read consecutive addresses and the global loads coalesce.
static __device__ __forceinline__ void matmul_big_position(int e, int depthContiguous,
                                                           int* tileOffset, int* depth) {
  *tileOffset = depthContiguous ? e / MATMUL_BIG_DEPTH : e % MATMUL_BIG_TILE;
  *depth = depthContiguous ? e % MATMUL_BIG_DEPTH : e / MATMUL_BIG_TILE;
}

// Loads this thread's share of the panels of op(A) and op(B) that start at depth p0 into
// registers: aStaged[s] is op(A)[rowBase + r, p0 + p] and bStaged[s] is op(B)[p0 + q, colBase +
// col] for the (r, p) and (col, q) that matmul_big_position gives for element thread + 256 * s.
// Values past an edge of the matrices are zero.

static __device__ __forceinline__ void matmul_big_load(
    const float* __restrict__ a, const float* __restrict__ b, int m, int n, int k, int transA,
    int transB, int rowBase, int colBase, int p0, int thread, float* aStaged, float* bStaged) {
  for (int s = 0; s < MATMUL_BIG_STAGED; s++) {
    int e = thread + MATMUL_BLOCK_THREADS * s;
    int r, p;
    matmul_big_position(e, !transA, &r, &p);
    bool inside = rowBase + r < m && p0 + p < k;
    aStaged[s] = inside ? matmul_load_a(a, transA, m, k, rowBase + r, p0 + p) : 0.0f;
    int col, q;
    matmul_big_position(e, transB, &col, &q);
    inside = p0 + q < k && colBase + col < n;
    bStaged[s] = inside ? matmul_load_b(b, transB, k, n, p0 + q, colBase + col) : 0.0f;
  }
}

// Stores the values that matmul_big_load gave this thread into one pair of panels:
// aPanel[p][r] = op(A)[rowBase + r, p0 + p] and bPanel[q][col] = op(B)[p0 + q, colBase + col].
static __device__ __forceinline__ void matmul_big_store(int transA, int transB, int thread,
                                                        const float* aStaged,
                                                        const float* bStaged, float* aPanel,
                                                        float* bPanel) {
  for (int s = 0; s < MATMUL_BIG_STAGED; s++) {
    int e = thread + MATMUL_BLOCK_THREADS * s;
    int r, p;
    matmul_big_position(e, !transA, &r, &p);
    aPanel[p * MATMUL_BIG_ROW + r] = aStaged[s];
    int col, q;
    matmul_big_position(e, transB, &col, &q);
    bPanel[q * MATMUL_BIG_ROW + col] = bStaged[s];
  }
}

// Computes the 128 x 128 tile of C whose top left element is (rowBase, colBase), for
// kiln_matmul_tiled128 below. Thread (tx, ty) computes rows rowBase + 4*ty + i and rowBase + 64 +
// 4*ty + i, and columns colBase + 4*tx + j and colBase + 64 + 4*tx + j, for i, j in 0..3:
//
//                          columns 4tx .. 4tx+3    columns 64+4tx .. 64+4tx+3
//   rows 4ty .. 4ty+3        acc[0..3][0..3]         acc[0..3][4..7]
//   rows 64+4ty .. 64+4ty+3  acc[4..7][0..3]         acc[4..7][4..7]
//
// Staging (matmul_big_position): for a plain A, thread t loads A[rowBase + t/8 + 32s][p0 + t%8]
// for s in 0..3, so a warp reads 4 rows of 8 consecutive floats. For a transposed A it loads
// A[p0 + t/128 + 2s][rowBase + t%128], 32 consecutive floats per warp. B is the mirror image.
//
// The panels hold two buffers one after the other: buffer d of A starts at aPanels + d *
// BIG_DEPTH * BIG_ROW. Every thread of the block must call it with the same rowBase and colBase,
// because it waits at __syncthreads.
static __device__ __forceinline__ void matmul_big_tile(
    const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int m, int n,
    int k, int transA, int transB, int accumulate, int rowBase, int colBase, int tx, int ty,
    int thread, float* aPanels, float* bPanels) {
  const int panelSize = MATMUL_BIG_DEPTH * MATMUL_BIG_ROW;
  float acc[MATMUL_BIG_PER_THREAD][MATMUL_BIG_PER_THREAD];
  for (int i = 0; i < MATMUL_BIG_PER_THREAD; i++) {
    for (int j = 0; j < MATMUL_BIG_PER_THREAD; j++) {
      acc[i][j] = 0.0f;
    }
  }

  // The first pair of panels goes straight to buffer 0. The previous tile's last step ended with
  // a barrier, so no thread still reads buffer 0 of that tile.
  float aStaged[MATMUL_BIG_STAGED];
  float bStaged[MATMUL_BIG_STAGED];
  matmul_big_load(a, b, m, n, k, transA, transB, rowBase, colBase, 0, thread, aStaged, bStaged);
  matmul_big_store(transA, transB, thread, aStaged, bStaged, aPanels, bPanels);
  __syncthreads();

  int buffer = 0;
  for (int p0 = 0; p0 < k; p0 += MATMUL_BIG_DEPTH) {
    bool hasNextPanel = p0 + MATMUL_BIG_DEPTH < k;
    // Start the next step's global loads now. Their results are needed only after the
    // arithmetic below, so the memory latency hides behind it.
    if (hasNextPanel) {
      matmul_big_load(a, b, m, n, k, transA, transB, rowBase, colBase, p0 + MATMUL_BIG_DEPTH,
                      thread, aStaged, bStaged);
    }

    const float* aPanel = aPanels + buffer * panelSize;
    const float* bPanel = bPanels + buffer * panelSize;
    for (int p = 0; p < MATMUL_BIG_DEPTH; p++) {
      // Four consecutive floats at an index that is a multiple of 4, in a row whose length is a
      // multiple of 16 bytes: nvcc reads each group with one 16-byte shared-memory load.
      // NOTE: that is nvcc's choice, not the source's. nvcc 13.0 makes it (the PTX of this kernel
      // has 4 ld.shared.v4.f32 and 64 fma.rn.f32 per step: nvcc -ptx -arch=sm_90 matmul.cu).
      float aValues[MATMUL_BIG_PER_THREAD];
      float bValues[MATMUL_BIG_PER_THREAD];
      for (int i = 0; i < MATMUL_BIG_GROUP; i++) {
        aValues[i] = aPanel[p * MATMUL_BIG_ROW + MATMUL_BIG_GROUP * ty + i];
        aValues[MATMUL_BIG_GROUP + i] =
            aPanel[p * MATMUL_BIG_ROW + MATMUL_BIG_TILE / 2 + MATMUL_BIG_GROUP * ty + i];
        bValues[i] = bPanel[p * MATMUL_BIG_ROW + MATMUL_BIG_GROUP * tx + i];
        bValues[MATMUL_BIG_GROUP + i] =
            bPanel[p * MATMUL_BIG_ROW + MATMUL_BIG_TILE / 2 + MATMUL_BIG_GROUP * tx + i];
      }
      for (int i = 0; i < MATMUL_BIG_PER_THREAD; i++) {
        for (int j = 0; j < MATMUL_BIG_PER_THREAD; j++) {
          acc[i][j] += aValues[i] * bValues[j];
        }
      }
    }

    // The other buffer was last read in the previous step, which every thread finished before
    // the barrier that ended it, so it can be overwritten now while slower threads still read
    // this one. The barrier after the store makes the new panels visible to the whole block.
    if (hasNextPanel) {
      buffer ^= 1;
      matmul_big_store(transA, transB, thread, aStaged, bStaged, aPanels + buffer * panelSize,
                       bPanels + buffer * panelSize);
    }
    __syncthreads();
  }

  for (int i = 0; i < MATMUL_BIG_PER_THREAD; i++) {
    int row = rowBase + (i / MATMUL_BIG_GROUP) * (MATMUL_BIG_TILE / 2) + MATMUL_BIG_GROUP * ty +
              i % MATMUL_BIG_GROUP;
    for (int j = 0; j < MATMUL_BIG_PER_THREAD; j++) {
      int col = colBase + (j / MATMUL_BIG_GROUP) * (MATMUL_BIG_TILE / 2) + MATMUL_BIG_GROUP * tx +
                j % MATMUL_BIG_GROUP;
      if (row < m && col < n) {
        long long index = (long long)row * n + col;
        c[index] = accumulate ? c[index] + acc[i][j] : acc[i][j];
      }
    }
  }
}

// The same product as kiln_matmul_tiled, with 128 x 128 tiles of C, 8 x 8 values per thread and
// double-buffered panels. It suits products with many tiles: on a small C, the 64 x 64 kernel's
// four times as many blocks keep more multiprocessors busy.
//
// Launch: block (16, 16) and grid (ceil(n / 128), min(ceil(m / 128), 65535), min(batches,
// 65535)). Block (bx, by, bz) computes columns 128*bx to 128*bx + 127 of C, and rows 128*t to
// 128*t + 127 for each row tile t = by, by + gridDim.y, by + 2 * gridDim.y and so on below
// ceil(m / 128), of each product that the header's loop over z gives it. No dynamic shared memory:
// the four panels take 16.5 KiB of static shared memory. Any m, n, k >= 0 works, because panels
// that reach past an edge are padded with zeros.
//
// A thread's 8 x 8 values are two 4 x 4 squares in each direction, 64 rows or columns apart,
// rather than one 8 x 8 square. Then the 16 threads of a half-warp, with consecutive tx, read 64
// consecutive floats of a panel row with their 16-byte loads, which shared memory serves in two
// passes without bank conflicts.
//
// __launch_bounds__ requests two resident blocks per multiprocessor, which caps a thread at
// 128 registers (65536 / 512). With it, ptxas from CUDA 13.0 spills nothing for sm_80 and sm_90, 4
// bytes per thread for sm_75 and 56 for sm_86 and sm_89 (nvcc -cubin -Xptxas -v). Before the batch
// loop, whose pointers stay in registers where the kernel's parameters could be read from
// constant memory, those were 0 and 36 bytes.
// NOTE: whether those spills land inside the loop over k, and what they cost, is not measured.
extern "C" __global__ void __launch_bounds__(MATMUL_BLOCK_THREADS, 2)
    kiln_matmul_tiled128(const float* __restrict__ a, const float* __restrict__ b,
                         float* __restrict__ c, int m, int n, int k, int transA, int transB,
                         int accumulate, int batches, long long strideA, long long strideB,
                         long long strideC) {
  // Two buffers of each panel, [2][8][132], aligned so that every group of four
  // floats read together starts on a 16-byte boundary.
  __shared__ __align__(16) float aPanels[2 * MATMUL_BIG_DEPTH * MATMUL_BIG_ROW];
  __shared__ __align__(16) float bPanels[2 * MATMUL_BIG_DEPTH * MATMUL_BIG_ROW];

  int tx = threadIdx.x;
  int ty = threadIdx.y;
  int thread = ty * MATMUL_BLOCK_SIDE + tx;
  int colBase = blockIdx.x * MATMUL_BIG_TILE;

  // Every thread of the block computes the same bounds and steps through the same products and
  // tiles, so all of them reach each __syncthreads in matmul_big_tile.
  int tiles = (int)(((long long)m + MATMUL_BIG_TILE - 1) / MATMUL_BIG_TILE);
  for (int batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
      matmul_big_tile(a + batch * strideA, b + batch * strideB, c + batch * strideC, m, n, k,
                      transA, transB, accumulate, tile * MATMUL_BIG_TILE, colBase, tx, ty, thread,
                      aPanels, bPanels);
    }
  }
}
KILN_REGISTER(kiln_matmul_tiled128)
