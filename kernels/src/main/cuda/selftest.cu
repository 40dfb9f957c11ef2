// Small kernels that test the emulation itself (EmulatorSelfTest runs them) and show, by
// example, the CUDA rules that the emulator checks. Some of them break those rules on purpose,
// and their comments mark them. They build into the fatbin too, so the same checks can run on a GPU.

#include "kiln_cuda.h"

// Sums each warp's 32 inputs with __shfl_down_sync and writes the total to sums[warp].
//
// Launch: 1d grid, 1d block whose size is a multiple of 32. input has gridDim.x * blockDim.x
// floats and sums one float per warp. No shared memory. After the shuffles with offsets 16, 8,
// 4, 2 and 1, lane 0 has the sum of all 32 lanes.
extern "C" __global__ void kiln_selftest_warp_sum(const float* __restrict__ input,
                                                  float* __restrict__ sums) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float value = input[i];
  for (int offset = 16; offset > 0; offset >>= 1) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  if (threadIdx.x % 32 == 0) {
    sums[i / 32] = value;
  }
}
KILN_REGISTER(kiln_selftest_warp_sum)

// Writes, for every thread, the bitmask of lanes in its warp whose input is positive
// (__ballot_sync), and whether any and all lanes' inputs are positive.
//
// Launch: 1d grid, 1d block of any size. Each of input, ballots, any and all has one element
// per thread. No shared memory.
extern "C" __global__ void kiln_selftest_votes(const float* __restrict__ input,
                                               int* __restrict__ ballots, int* __restrict__ any,
                                               int* __restrict__ all) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int positive = input[i] > 0.0f;
  ballots[i] = (int)__ballot_sync(0xffffffffu, positive);
  any[i] = __any_sync(0xffffffffu, positive);
  all[i] = __all_sync(0xffffffffu, positive);
}
KILN_REGISTER(kiln_selftest_votes)

// Each thread stores its index in shared memory, waits for its warp at __syncwarp, and then reads
// the entry of the next lane in its warp: out[i] = i - lane + (lane + 1) % 32. Without the
// __syncwarp, a lane could read its neighbor's entry before the neighbor stored it.
//
// Launch: one block whose size is a multiple of 32, at most 1024. out has blockDim.x ints.
extern "C" __global__ void kiln_selftest_warp_barrier(int* __restrict__ out) {
  __shared__ int stage[1024];
  int lane = threadIdx.x % 32;
  stage[threadIdx.x] = threadIdx.x;
  __syncwarp();
  out[threadIdx.x] = stage[threadIdx.x - lane + (lane + 1) % 32];
}
KILN_REGISTER(kiln_selftest_warp_barrier)

// Every thread reads a value that thread 0 of its own block stored in a __shared__ variable,
// and a neighbor's entry of dynamic shared memory: out[2i] = 1000 * blockIdx.x and
// out[2i + 1] = 1000 * blockIdx.x + (threadIdx.x + 1) % blockDim.x.
//
// Launch: 1d grid, 1d block of any size, dynamic shared bytes = 4 * blockDim.x. out has two
// ints per thread.
extern "C" __global__ void kiln_selftest_shared_per_block(int* __restrict__ out) {
  __shared__ int blockValue;
  KILN_DYNAMIC_SHARED(int, slots);
  if (threadIdx.x == 0) {
    blockValue = 1000 * blockIdx.x;
  }
  slots[threadIdx.x] = 1000 * blockIdx.x + threadIdx.x;
  __syncthreads();

  int i = blockIdx.x * blockDim.x + threadIdx.x;
  out[2 * i] = blockValue;
  out[2 * i + 1] = slots[(threadIdx.x + 1) % blockDim.x];
}
KILN_REGISTER(kiln_selftest_shared_per_block)

// Writes, for every thread, what __shfl_xor_sync returns when each lane offers its own index:
// out[i] = __shfl_xor_sync(0xffffffff, i, laneMask, width). Lane l reads lane l ^ laneMask when
// that lane is in l's segment of width lanes or in an earlier segment, and keeps its own index when
// the source lies in a later segment.
//
// Launch: one block of 32 threads. out has 32 floats. width is a power of two from 1 to 32.
extern "C" __global__ void kiln_selftest_shuffle_xor(float* __restrict__ out, int laneMask,
                                                     int width) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, laneMask, width);
}
KILN_REGISTER(kiln_selftest_shuffle_xor)

// Adds the index of every thread to *intTotal, and 1 to *floatCount, with atomicAdd. It also takes
// the maximum index with atomicMax. The int sum and the count (below 2^24) are exact.
//
// Launch: 1d grid and block of any size. No shared memory.
extern "C" __global__ void kiln_selftest_atomics(int* __restrict__ intTotal,
                                                 float* __restrict__ floatCount,
                                                 int* __restrict__ maxIndex) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(intTotal, i);
  atomicAdd(floatCount, 1.0f);
  atomicMax(maxIndex, i);
}
KILN_REGISTER(kiln_selftest_atomics)

// BREAKS A RULE: threads with threadIdx.x >= 16 return before the __syncthreads that the
// others wait at. The emulator fails the launch, and a GPU may hang or give wrong results.
//
// Launch: one block of more than 16 threads. out has blockDim.x floats.
extern "C" __global__ void kiln_selftest_partial_barrier(float* out) {
  if (threadIdx.x >= 16) {
    return;
  }
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}
KILN_REGISTER(kiln_selftest_partial_barrier)

// BREAKS A RULE: thread 0 waits at a barrier while the other threads spin until a flag that no
// thread sets turns nonzero. The emulator's barrier times out, and the spinning threads are
// released by their atomic. On a GPU this kernel hangs.
//
// Launch: one block of at least 2 threads, with *flag set to 0.
extern "C" __global__ void kiln_selftest_barrier_timeout(int* flag) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    while (atomicAdd(flag, 0) == 0) {
    }
  }
}
KILN_REGISTER(kiln_selftest_barrier_timeout)

// BREAKS A RULE: shuffles with mask 0x0000ffff, leaving out lanes 16 to 31 that run the same
// call. kiln's kernels always pass every active lane. The emulator fails the launch.
//
// Launch: one block of 32 threads. out has 32 floats.
extern "C" __global__ void kiln_selftest_partial_mask(float* out) {
  out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, (float)threadIdx.x, 1);
}
KILN_REGISTER(kiln_selftest_partial_mask)

// BREAKS A RULE in a partial warp: with a block of 40 threads, the second warp has lanes 0 to 7,
// and lane 7 reads lane 8, which does not exist. The emulator fails the launch.
//
// Launch: one block of 40 threads. out has 40 floats.
extern "C" __global__ void kiln_selftest_inactive_source(float* out) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
}
KILN_REGISTER(kiln_selftest_inactive_source)

// BREAKS A RULE: a barrier is missing. Lane 0 of each warp stores 1 in shared memory, and after a
// barrier every thread reads the value of the block's last warp into out. Lane 0 of each warp
// then stores 2 without a barrier first, so a warp that runs ahead can overwrite the value before
// a slower warp has read it. Under the parallel schedule, out is usually all 1. The
// serial-reverse schedule runs the last warp to its second store first, so the other warps read 2.
//
// Launch: one block whose size is a multiple of 32, at least 64. out has blockDim.x ints.
extern "C" __global__ void kiln_selftest_missing_barrier(int* out) {
  __shared__ int stage[32];
  int warp = threadIdx.x / 32;
  int last = blockDim.x / 32 - 1;
  if (threadIdx.x % 32 == 0) {
    stage[warp] = 1;
  }
  __syncthreads();
  out[threadIdx.x] = stage[last];
  // The missing __syncthreads belongs here.
  if (threadIdx.x % 32 == 0) {
    stage[warp] = 2;
  }
  __syncthreads();
}
KILN_REGISTER(kiln_selftest_missing_barrier)

// BREAKS A RULE: lanes 0 to 15 wait at a __syncthreads while lanes 16 to 31 of the same warp wait
// in a __shfl_sync for them, so neither completes. A GPU hangs. The emulator fails the launch:
// the serial schedules at once, and the parallel one after the barrier timeout.
//
// Launch: one block of 32 threads. out has 32 floats.
extern "C" __global__ void kiln_selftest_split_warp(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_sync(0xffffffffu, (float)threadIdx.x, 0);
  }
}
KILN_REGISTER(kiln_selftest_split_warp)

// BREAKS A RULE: thread 0 of each block reads a static __shared__ variable and an int of dynamic
// shared memory before any thread writes them. It stores the two values in out[2 * blockIdx.x] and
// out[2 * blockIdx.x + 1], and then writes 7 to both. Shared memory starts undefined on a GPU. The
// emulator fills it with 0xFF bytes before every block, so both reads return -1 in every block,
// never a 7 left by the previous block.
//
// Launch: 1d grid, one thread per block, 4 bytes of dynamic shared memory. out has 2 ints per
// block.
extern "C" __global__ void kiln_selftest_shared_poison(int* out) {
  __shared__ int value;
  KILN_DYNAMIC_SHARED(int, slots);
  if (threadIdx.x == 0) {
    out[2 * blockIdx.x] = value;
    out[2 * blockIdx.x + 1] = slots[0];
    value = 7;
    slots[0] = 7;
  }
}
KILN_REGISTER(kiln_selftest_shared_poison)
