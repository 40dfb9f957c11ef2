// The one header every kiln kernel source includes first.
//
// The same .cu files compile twice. nvcc (with __CUDACC__ defined) builds them into a fatbin for
// NVIDIA GPUs, and this header then only adds the two kiln macros below in their CUDA form. g++
// builds them into libkiln_emu.so for the CPU, and this header then pulls in the emulation
// header, which supplies the subset of CUDA that kiln's kernels may use (see its header comment).
//
// Rules for kernel sources, which keep both builds working:
//   - Every kernel is `extern "C" __global__ void kiln_<family>_<name>(...)` with float32 data,
//     int sizes, float scalars, unsigned long long seeds and offsets, long long strides, and
//     pointer parameters.
//   - `KILN_REGISTER(kiln_<family>_<name>)` follows each kernel's body on its own line. Under
//     nvcc it expands to nothing. Under emulation it registers the kernel by name with a
//     trampoline that unpacks cuLaunchKernel-style `void** args` into the typed parameters.
//   - nvcc compiles all families together as one translation unit (the fatbin build includes
//     every .cu file into one file), so file-scope helpers must carry the family in their name,
//     as in `static __device__ __forceinline__ float conv_block_sum(...)`.
//   - Dynamic shared memory is declared with KILN_DYNAMIC_SHARED(type, name), which gives a
//     `type* name` pointing at the block's dynamic shared bytes (16-byte aligned).
#pragma once

#ifdef __CUDACC__

// Every kernel reads dynamic shared memory through the same extern array, because CUDA rejects
// extern __shared__ arrays of one name but different types in one translation unit.
#define KILN_DYNAMIC_SHARED(type, name)                                \
  extern __shared__ __align__(16) unsigned char kiln_dynamic_shared[]; \
  type* name = reinterpret_cast<type*>(kiln_dynamic_shared)

#define KILN_REGISTER(kernel)

#else

#include "emulation/kiln_emu.h"

#endif
